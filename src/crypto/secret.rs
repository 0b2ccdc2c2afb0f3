//! Secret newtypes. None implements `Debug`, `Display` or `Clone`; all wipe
//! their bytes on drop and try to keep them out of swap (mlock). The keys
//! made from them (master key, subkeys) are in `keys`, above `aead` and
//! `names`, which build on these.

use zeroize::Zeroize;

/// Heap-allocated, mlocked, zeroized-on-drop fixed-size secret.
pub struct Secret<const N: usize>(Box<[u8; N]>);

impl<const N: usize> Secret<N> {
    /// Wraps (and takes) the given bytes, wiping the source.
    pub fn from_bytes(src: &mut [u8; N]) -> Self {
        let mut b = Box::new([0u8; N]);
        b.copy_from_slice(src);
        src.zeroize();
        lock_memory(b.as_ptr(), N);
        Secret(b)
    }

    /// Fresh random secret.
    pub fn random() -> Self {
        let mut b = Box::new([0u8; N]);
        super::random::fill(&mut b[..]);
        lock_memory(b.as_ptr(), N);
        Secret(b)
    }

    /// The secret bytes. Callers must not copy them into non-zeroizing storage.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> Secret<N> {
    /// Locks the bytes in memory again: memory locks are not inherited
    /// across fork(2), so the daemon calls this after it forks.
    pub fn relock(&self) {
        lock_memory(self.0.as_ptr(), N);
    }
}

impl<const N: usize> Drop for Secret<N> {
    fn drop(&mut self) {
        // Wiped, but not unlocked: mlock is per page, not per allocation,
        // and another secret may share the page.
        self.0.zeroize();
    }
}

pub(super) fn lock_memory(ptr: *const u8, len: usize) {
    // Best effort: an RLIMIT_MEMLOCK of zero must not stop the vault from opening.
    // SAFETY: ptr..ptr+len is a live allocation owned by the caller.
    unsafe {
        libc::mlock(ptr.cast(), len);
    }
}

/// A 256-bit key.
pub type Key32 = Secret<32>;

/// A password typed by the user; wiped on drop.
pub struct Password(zeroize::Zeroizing<Vec<u8>>);

impl Password {
    /// Takes ownership of the password bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Password(zeroize::Zeroizing::new(bytes))
    }

    /// The password bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// True for an empty password.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
