//! Keeping an idle shim small.
//!
//! A shim spends nearly all its life idle beside its container, yet its resident set keeps
//! every code page it ever touched (and the kernel maps file pages in 64 KiB "fault-around"
//! batches). At startup, and when it finds itself idle and grown (checked every 5 s by the
//! main loop, so a burst of requests is never slowed down by it), the shim drops its
//! clean, read-only file-backed pages from its page tables with `MADV_DONTNEED`: they stay in
//! the page cache (shared with every other shim) and fault back in on use. Only read-only
//! `PT_LOAD` segments outside `PT_GNU_RELRO` are touched, so no relocated (dirty) page is
//! ever discarded. Freed heap goes back to the kernel with `malloc_trim`.

use std::ffi::{c_int, c_void, CStr};

/// Limits glibc to few malloc arenas (each thread would otherwise get its own heap).
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only adjusts allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

unsafe extern "C" fn release_object(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info for the duration of the callback, and
    // `data` is the page size we passed in.
    let (info, page) = unsafe { (&*info, *(data as *const usize)) };
    if !info.dlpi_name.is_null() {
        // SAFETY: a NUL-terminated name owned by the dynamic linker.
        let name = unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes();
        if name.starts_with(b"linux-vdso") || name.starts_with(b"linux-gate") {
            return 0;
        }
    }
    if info.dlpi_phdr.is_null() || info.dlpi_phnum == 0 {
        return 0;
    }
    // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
    let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let base = info.dlpi_addr as usize;
    let relro = phdrs
        .iter()
        .find(|p| p.p_type == libc::PT_GNU_RELRO)
        .map(|p| {
            let s = base + p.p_vaddr as usize;
            // Widen to whole pages: never touch a page that shares bytes with RELRO.
            (
                s / page * page,
                (s + p.p_memsz as usize).div_ceil(page) * page,
            )
        });
    for p in phdrs
        .iter()
        .filter(|p| p.p_type == libc::PT_LOAD && p.p_flags & libc::PF_W == 0)
    {
        let s = base + p.p_vaddr as usize;
        let (start, end) = (
            s.div_ceil(page) * page,
            (s + p.p_filesz as usize) / page * page,
        );
        let mut ranges = vec![(start, end)];
        if let Some((rs, re)) = relro {
            ranges = vec![(start, end.min(rs)), (start.max(re), end)];
        }
        for (a, b) in ranges {
            if b > a {
                // SAFETY: a page-aligned range of a read-only, file-backed segment of a loaded
                // object, never written (not RELRO); dropping it only forces a re-read.
                unsafe { libc::madvise(a as *mut c_void, b - a, libc::MADV_DONTNEED) };
            }
        }
    }
    0
}

/// Drops clean file-backed pages and returns free heap to the kernel.
pub fn release_idle_memory() {
    let page = page_size();
    // SAFETY: the callback only reads what dl_iterate_phdr hands it; `page` outlives the call.
    unsafe {
        libc::malloc_trim(0);
        libc::dl_iterate_phdr(Some(release_object), &page as *const usize as *mut c_void);
    }
}
