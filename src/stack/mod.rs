//! Coroutine stacks — PROVISIONAL stand-in (one mmap per stack) until the slab allocator lands.
use std::io;

/// One coroutine stack.
pub(crate) struct Stack {
    base: usize,
    len: usize,
}

// SAFETY: a Stack is plain memory owned by whoever holds it.
unsafe impl Send for Stack {}

const GUARD: usize = 4096;

impl Stack {
    pub(crate) fn top(&self) -> usize {
        self.base + self.len
    }
    pub(crate) fn bottom(&self) -> usize {
        self.base + GUARD
    }
    #[allow(dead_code)]
    pub(crate) fn size(&self) -> usize {
        self.len - GUARD
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by `allocate` and is no longer in use.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

pub(crate) fn default_stack_size() -> usize {
    1 << 20
}

pub(crate) fn round_stack_size(requested: usize) -> io::Result<usize> {
    if requested > 1 << 30 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "stack size above 1 GiB",
        ));
    }
    Ok(requested.max(16384).div_ceil(4096) * 4096)
}

pub(crate) fn allocate(size: usize) -> io::Result<Stack> {
    let len = size + GUARD;
    // SAFETY: anonymous private mapping, checked for failure.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(Stack {
        base: p as usize,
        len,
    })
}
