//! The ABI types of this crate against the kernel's own uapi header: a C
//! program built with the header prints every size and offset, and they
//! must equal this crate's. The header is the one the patch series puts
//! into the kernel tree (`linux/include/uapi/linux/flexsc.h`, or
//! `$FLEXSC_UAPI_HEADER`); without it the test fails rather than skip.

use flexsc::abi::{self, Hdr, Params, Ring, SysEntry};
use std::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

fn header() -> PathBuf {
    if let Some(p) = std::env::var_os("FLEXSC_UAPI_HEADER") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("linux/include/uapi/linux/flexsc.h")
}

#[test]
fn layout_matches_uapi_header() {
    let header = header();
    assert!(
        header.is_file(),
        "{} is missing: run `make tree` (or set FLEXSC_UAPI_HEADER)",
        header.display()
    );
    let dir = std::env::temp_dir().join(format!("flexsc-layout-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("linux")).unwrap();
    // The uapi header includes <linux/types.h> only.
    std::fs::copy(&header, dir.join("linux/flexsc.h")).unwrap();
    let src = dir.join("layout.c");
    std::fs::write(
        &src,
        r#"
#include <stdio.h>
#include <stddef.h>
#include <linux/flexsc.h>
#define P(x) printf("%s %lu\n", #x, (unsigned long)(x))
int main(void) {
    P(sizeof(struct flexsc_sysentry)); P(_Alignof(struct flexsc_sysentry));
    P(offsetof(struct flexsc_sysentry, status)); P(offsetof(struct flexsc_sysentry, nr));
    P(offsetof(struct flexsc_sysentry, args)); P(offsetof(struct flexsc_sysentry, ret));
    P(sizeof(struct flexsc_hdr));
    P(offsetof(struct flexsc_hdr, flags)); P(offsetof(struct flexsc_hdr, nentries));
    P(offsetof(struct flexsc_hdr, reserved));
    P(sizeof(struct flexsc_params));
    P(offsetof(struct flexsc_params, region)); P(offsetof(struct flexsc_params, nentries));
    P(offsetof(struct flexsc_params, nsysthreads)); P(offsetof(struct flexsc_params, cpu_mask));
    P(offsetof(struct flexsc_params, cpu_mask_size)); P(offsetof(struct flexsc_params, idle_us));
    P(offsetof(struct flexsc_params, flags));
    P(FLEXSC_ABI_VERSION); P(FLEXSC_FREE); P(FLEXSC_SUBMITTED); P(FLEXSC_BUSY); P(FLEXSC_DONE);
    P(FLEXSC_NEED_WAKEUP); P(FLEXSC_MAX_ENTRIES); P(FLEXSC_PARAMS_SIZE_VER0);
    P(sizeof(struct flexsc_ring)); P(_Alignof(struct flexsc_ring));
    P(offsetof(struct flexsc_ring, sq_tail)); P(offsetof(struct flexsc_ring, cq_head));
    P(offsetof(struct flexsc_ring, user_resv)); P(offsetof(struct flexsc_ring, sq_head));
    P(offsetof(struct flexsc_ring, cq_tail)); P(offsetof(struct flexsc_ring, kernel_resv));
    P(offsetof(struct flexsc_ring, sq));
    P(FLEXSC_REGISTER_RING);
    P(FLEXSC_RING_OFFSET(1)); P(FLEXSC_RING_REGION_LEN(1));
    P(FLEXSC_RING_OFFSET(64)); P(FLEXSC_RING_REGION_LEN(64));
    P(FLEXSC_RING_OFFSET(4096)); P(FLEXSC_RING_REGION_LEN(4096));
    return 0;
}
"#,
    )
    .unwrap();
    let exe = dir.join("layout");
    let cc = Command::new("cc")
        .arg("-I")
        .arg(&dir)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(cc.success(), "cc failed on {}", header.display());
    let out = Command::new(&exe).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let c: Vec<usize> = text
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    let rust = [
        size_of::<SysEntry>(),
        align_of::<SysEntry>(),
        offset_of!(SysEntry, status),
        offset_of!(SysEntry, nr),
        offset_of!(SysEntry, args),
        offset_of!(SysEntry, ret),
        size_of::<Hdr>(),
        offset_of!(Hdr, flags),
        offset_of!(Hdr, nentries),
        offset_of!(Hdr, reserved),
        size_of::<Params>(),
        offset_of!(Params, region),
        offset_of!(Params, nentries),
        offset_of!(Params, nsysthreads),
        offset_of!(Params, cpu_mask),
        offset_of!(Params, cpu_mask_size),
        offset_of!(Params, idle_us),
        offset_of!(Params, flags),
        abi::ABI_VERSION as usize,
        abi::FREE as usize,
        abi::SUBMITTED as usize,
        abi::BUSY as usize,
        abi::DONE as usize,
        abi::NEED_WAKEUP as usize,
        abi::MAX_ENTRIES as usize,
        abi::PARAMS_SIZE_VER0,
        size_of::<Ring>(),
        align_of::<Ring>(),
        offset_of!(Ring, sq_tail),
        offset_of!(Ring, cq_head),
        offset_of!(Ring, user_resv),
        offset_of!(Ring, sq_head),
        offset_of!(Ring, cq_tail),
        offset_of!(Ring, kernel_resv),
        // sq[] follows the struct.
        size_of::<Ring>(),
        abi::REGISTER_RING as usize,
        abi::ring_offset(1),
        abi::ring_region_len(1),
        abi::ring_offset(64),
        abi::ring_region_len(64),
        abi::ring_offset(4096),
        abi::ring_region_len(4096),
    ];
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(c.len(), rust.len(), "C printed:\n{text}");
    for (i, (line, r)) in text.lines().zip(rust).enumerate() {
        assert_eq!(c[i], r, "{line}: the crate has {r}");
    }
}
