//! Two coroutines take turns printing 0..=9, with two 1-slot channels as semaphores:
//! coroutine A prints the even numbers, B the odd ones. Sending into `ch1` starts it.
//!
//! The Go original:
//! ```go
//! ch1, ch2 := make(chan struct{}, 1), make(chan struct{}, 1)
//! go func() { for i := 0; i < 10; i += 2 { <-ch1; fmt.Println(i); ch2 <- struct{}{} } }()
//! go func() { for i := 1; i < 10; i += 2 { <-ch2; fmt.Println(i); ch1 <- struct{}{} } }()
//! ch1 <- struct{}{}
//! ```
//!
//! Run: `cargo run --example pingpong`

use goro::chan::bounded;

fn main() {
    goro::run(|| {
        let (ch1_tx, ch1_rx) = bounded::<()>(1);
        let (ch2_tx, ch2_rx) = bounded::<()>(1);

        let a_next = ch2_tx.clone();
        let a = goro::spawn(move || {
            for i in (0..10).step_by(2) {
                ch1_rx.recv().unwrap();
                println!("A: {i}");
                a_next.send(()).unwrap();
            }
        });

        let b_next = ch1_tx.clone();
        let b = goro::spawn(move || {
            for i in (1..10).step_by(2) {
                ch2_rx.recv().unwrap();
                println!("B: {i}");
                if i + 2 < 10 {
                    // (After the last number A is gone, and so is its channel.)
                    b_next.send(()).unwrap();
                }
            }
        });

        ch1_tx.send(()).unwrap(); // ch1 <- struct{}{}: A goes first
                                  // Wait for both to finish (instead of Go's time.Sleep).
        a.join().unwrap();
        b.join().unwrap();
    });
}
