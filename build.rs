//! Link settings of warden's binaries.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // Relative relocations packed into DT_RELR (glibc 2.36, GNU ld 2.38, lld 15): the
        // dynamic loader reads a few kilobytes instead of the 280 KiB `.rela.dyn` table,
        // which both warden and its guard otherwise keep resident for their whole life.
        // A linker or C library without it builds the classic table instead.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
