//! The encoding of a compacted stack's live words: a parked coroutine's frames are mostly
//! zeros, small integers, pointers into its own stack, the heap or the program's code, so
//! each 8-byte word is stored in 0, 1, 2, 4 or 8 bytes.
//!
//! Format: a little-endian `u16` word count `n`, then `n` 4-bit tags (two to a byte, word
//! `i` in the low half of byte `i / 2` when `i` is even), then the payloads in word order
//! (little-endian):
//!
//! | tag | word `w` | payload |
//! |---|---|---|
//! | 0 | zero | none |
//! | 1 | below 2^8 | 1 byte |
//! | 2 | below 2^16 | 2 bytes |
//! | 3 | at most 64 KiB below the stack's top (a pointer into its own frames) | `top - w`, 2 bytes |
//! | 4 | below 2^32 | 4 bytes |
//! | 5 | high 32 bits equal those of the stack's address (the stack, mmap'd heap) | low 32 bits |
//! | 6 | high 32 bits equal those of this program's code (return addresses, statics, `brk` heap) | low 32 bits |
//! | 7 | anything else | 8 bytes |
//!
//! Measured on peers `conns` (one idle connection parked in `read`, 752 live bytes: 94 words,
//! 27 zeros, 9 small, 8 into its frames, 7 below 2^32, 37 near the stack or the code, 6
//! others): 298 bytes. Encoding and decoding are one pass over the words (tens of
//! nanoseconds), against the page fault a restore costs anyway (microseconds).
//!
//! When that would not be smaller than the words themselves, the count carries a flag
//! (bit 15) and the words follow unencoded.
//!
//! Invariant: [`unpack`] writes exactly the words [`pack`] read, to the same addresses; a
//! buffer not made by [`pack`] is never decoded (the type that holds it is private to
//! `compact`).

/// Words a buffer can describe (the count is the low 15 bits of a `u16`).
pub(super) const MAX_WORDS: usize = RAW_FLAG as usize - 1;
/// Set in the count when the words follow as they are, without tags: data that does not
/// shrink (a buffer full of bytes) costs 2 bytes more than its size, never a sixteenth more.
const RAW_FLAG: u16 = 1 << 15;

/// What the context-dependent tags refer to, for `n` words at `at`.
#[derive(Clone, Copy)]
struct Frame {
    /// One past the last word (the stack's top).
    top: u64,
    /// High halves of the stack's own address and of this program's code.
    stack_hi: u64,
    code_hi: u64,
}

impl Frame {
    fn new(at: usize, n: usize) -> Frame {
        Frame {
            top: (at + 8 * n) as u64,
            stack_hi: (at as u64) >> 32,
            code_hi: (pack as *const () as u64) >> 32,
        }
    }

    /// The tag of `w` and its payload, little-endian in the low `len(tag)` bytes.
    fn encode(self, w: u64) -> (u8, u64) {
        if w == 0 {
            (0, 0)
        } else if w < 1 << 8 {
            (1, w)
        } else if w < 1 << 16 {
            (2, w)
        } else if w <= self.top && self.top - w < 1 << 16 {
            (3, self.top - w)
        } else if w < 1 << 32 {
            (4, w)
        } else if w >> 32 == self.stack_hi {
            (5, w & 0xffff_ffff)
        } else if w >> 32 == self.code_hi {
            (6, w & 0xffff_ffff)
        } else {
            (7, w)
        }
    }

    fn decode(self, tag: u8, payload: u64) -> u64 {
        match tag {
            3 => self.top - payload,
            5 => self.stack_hi << 32 | payload,
            6 => self.code_hi << 32 | payload,
            _ => payload,
        }
    }
}

/// Payload bytes of `tag`.
fn len(tag: u8) -> usize {
    [0, 1, 2, 2, 4, 4, 4, 8][tag as usize & 7]
}

/// Encode the `n` words at `src`. `None` when `n` is over [`MAX_WORDS`] or the buffer cannot
/// be allocated.
///
/// # Safety
/// `[src, src + n)` is readable, 8-aligned memory that nobody writes meanwhile.
pub(super) unsafe fn pack(src: *const u64, n: usize) -> Option<Box<[u8]>> {
    if n > MAX_WORDS {
        return None;
    }
    let f = Frame::new(src as usize, n);
    // SAFETY: word `i < n` of the range the caller vouches for.
    let word = |i: usize| unsafe { src.add(i).read() };
    let tags_len = n.div_ceil(2);
    let total = 2 + tags_len + (0..n).map(|i| len(f.encode(word(i)).0)).sum::<usize>();
    let mut out: Vec<u8> = Vec::new();
    if total >= 2 + 8 * n {
        out.try_reserve_exact(2 + 8 * n).ok()?;
        out.extend_from_slice(&(n as u16 | RAW_FLAG).to_le_bytes());
        (0..n).for_each(|i| out.extend_from_slice(&word(i).to_le_bytes()));
        return Some(out.into_boxed_slice());
    }
    out.try_reserve_exact(total).ok()?;
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.resize(2 + tags_len, 0);
    for i in 0..n {
        let (tag, payload) = f.encode(word(i));
        out[2 + i / 2] |= tag << (4 * (i % 2));
        out.extend_from_slice(&payload.to_le_bytes()[..len(tag)]);
    }
    debug_assert_eq!(out.len(), total);
    Some(out.into_boxed_slice())
}

/// How many words `buf` (made by [`pack`]) holds.
pub(super) fn words(buf: &[u8]) -> usize {
    (u16::from_le_bytes([buf[0], buf[1]]) & !RAW_FLAG) as usize
}

/// Write the words of `buf` (made by [`pack`] from the `words(buf)` words at `dst`) back to
/// `dst`.
///
/// # Safety
/// `[dst, dst + words(buf))` is writable, 8-aligned memory nobody else accesses meanwhile,
/// and it is where `buf` was packed from (tags 3, 5 and 6 are relative to it).
pub(super) unsafe fn unpack(buf: &[u8], dst: *mut u64) {
    let n = words(buf);
    if u16::from_le_bytes([buf[0], buf[1]]) & RAW_FLAG != 0 {
        for (i, w) in buf[2..2 + 8 * n].chunks_exact(8).enumerate() {
            // SAFETY: word `i < n` of the range the caller vouches for.
            unsafe { dst.add(i).write(u64::from_le_bytes(w.try_into().unwrap())) };
        }
        return;
    }
    let f = Frame::new(dst as usize, n);
    let tags = &buf[2..2 + n.div_ceil(2)];
    let mut at = 2 + tags.len();
    for i in 0..n {
        let tag = (tags[i / 2] >> (4 * (i % 2))) & 15;
        let l = len(tag);
        let mut le = [0u8; 8];
        le[..l].copy_from_slice(&buf[at..at + l]);
        at += l;
        // SAFETY: word `i < n` of the range the caller vouches for.
        unsafe { dst.add(i).write(f.decode(tag, u64::from_le_bytes(le))) };
    }
    debug_assert_eq!(at, buf.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One word of every kind for a frame of `n` words at `base`, with its payload size.
    fn samples(base: usize, n: usize, x: u64) -> Vec<(u64, usize)> {
        let top = (base + 8 * n) as u64;
        let (stack_hi, code_hi) = ((base as u64) >> 32, (pack as *const () as u64) >> 32);
        let mut v = vec![
            (0, 0),
            (1 + (x & 0x7f), 1),
            (0x100 + (x & 0xfeff), 2),
            (top - (x & 0xffff), 2),
            (0x1_0000 + (x & 0xfffe_ffff), 4),
            (stack_hi << 32 | (x & 0xffff_ffff), 4),
            (code_hi << 32 | (x >> 32), 4),
        ];
        // A word of none of those kinds (8 bytes), unless it happens to be one.
        let raw = x | 1 << 63;
        if raw >> 32 != stack_hi && raw >> 32 != code_hi {
            v.push((raw, 8));
        }
        // A pointer that lands within 64 KiB below the top takes the shorter form: leave
        // those out of the kinds that expect 4 or 8 bytes (addresses differ from run to run).
        v.retain(|&(w, l)| l <= 2 || w > top || top - w >= 1 << 16);
        v
    }

    #[test]
    fn every_kind_of_word_round_trips_in_its_size() {
        let n = 2000;
        let mut src = vec![0u64; n];
        let base = src.as_ptr() as usize;
        let mut want = Vec::with_capacity(n);
        let mut payload = 0;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        while want.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for (w, l) in samples(base, n, x) {
                if want.len() < n {
                    want.push(w);
                    payload += l;
                }
            }
        }
        src.copy_from_slice(&want);
        // SAFETY: a live Vec's words, read while nothing writes them.
        let buf = unsafe { pack(src.as_ptr(), n) }.unwrap();
        assert_eq!(words(&buf), n);
        assert_eq!(buf.len(), 2 + n / 2 + payload);
        // Decode into the source's own addresses, as a restore does.
        src.iter_mut().for_each(|w| *w = !0);
        // SAFETY: the Vec's words, where `buf` was packed from; nothing else touches them.
        unsafe { unpack(&buf, src.as_mut_ptr()) };
        for (i, (&got, &w)) in src.iter().zip(&want).enumerate() {
            assert_eq!(got, w, "word {i}");
        }
    }

    #[test]
    fn odd_counts_empty_and_too_long() {
        let mut three = [7u64, 0, u64::MAX];
        // SAFETY: a live array's words.
        let buf = unsafe { pack(three.as_ptr(), 3) }.unwrap();
        assert_eq!((words(&buf), buf.len()), (3, 2 + 2 + 1 + 8));
        three = [1, 1, 1];
        // SAFETY: where `buf` was packed from.
        unsafe { unpack(&buf, three.as_mut_ptr()) };
        assert_eq!(three, [7, 0, u64::MAX]);
        // Words that do not shrink are kept as they are, behind the count.
        let mut noise = [0u64; 64];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for w in &mut noise {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *w = x | 1 << 63; // of none of the short kinds
        }
        let want = noise;
        // SAFETY: a live array's words.
        let buf = unsafe { pack(noise.as_ptr(), 64) }.unwrap();
        assert_eq!((words(&buf), buf.len()), (64, 2 + 64 * 8));
        noise = [0; 64];
        // SAFETY: where `buf` was packed from.
        unsafe { unpack(&buf, noise.as_mut_ptr()) };
        assert_eq!(noise, want);
        // SAFETY: nothing is read for zero words.
        let buf = unsafe { pack(three.as_ptr(), 0) }.unwrap();
        assert_eq!((words(&buf), buf.len()), (0, 2));
        // SAFETY: `pack` refuses before reading anything.
        assert!(unsafe { pack(three.as_ptr(), MAX_WORDS + 1) }.is_none());
    }
}
