use clap::Parser;

// Parsing a large project allocates millions of small strings from several
// threads at once; glibc's allocator spent a fifth of `parse` on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc asks for transparent huge pages, and the kernel then zeroes 2 MiB
/// at every first touch: a fifth of `parse`'s CPU at 10,000 models, for a
/// process that lives a second or two. Regular pages are faster here.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments and only changes
    // this process's page policy.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() {
    no_huge_pages();
    let cli = sluice::cli::Cli::parse();
    std::process::exit(sluice::commands::main(cli));
}
