//! A child starts with every signal at its default action, whatever the parent ignores, on
//! both spawn paths. One test in this binary: it sets process-wide dispositions.

use process_transport_command::Command;
use process_transport_real::RealSpawner;
use std::sync::Arc;

/// The signals a child started on `spawner` ignores, as the `SigIgn` mask of
/// `/proc/self/status` gives them (bit `n - 1` for signal `n`).
async fn ignored_by_a_child(spawner: RealSpawner) -> u64 {
    let out = Command::new("grep")
        .args(["SigIgn", "/proc/self/status"])
        .spawner(Arc::new(spawner))
        .output()
        .await
        .expect("grep runs");
    let line = String::from_utf8(out.stdout).expect("text");
    let mask = line
        .trim()
        .strip_prefix("SigIgn:")
        .expect("the SigIgn line");
    u64::from_str_radix(mask.trim(), 16).expect("a hexadecimal mask")
}

/// glibc's two internal signals (32 and 33), which neither spawn path can reach: glibc
/// refuses them to `signal` and `sigaction`, and its `posix_spawn` sets them ignored in the
/// child (docs/fidelity.md).
const GLIBC_INTERNAL: u64 = if cfg!(target_env = "gnu") {
    (1 << 31) | (1 << 32)
} else {
    0
};

#[tokio::test]
async fn signals_the_parent_ignores_are_at_their_default_in_the_child_up_to_sigrtmax() {
    let ignored = [
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGRTMIN(),
        libc::SIGRTMAX(),
    ];
    // SAFETY: setting dispositions to SIG_IGN; no other test runs in this binary.
    unsafe {
        for signal in ignored {
            assert_ne!(libc::signal(signal, libc::SIG_IGN), libc::SIG_ERR);
        }
    }
    for portable in [false, true] {
        let mask = ignored_by_a_child(RealSpawner::new().portable(portable)).await;
        assert_eq!(
            mask & !GLIBC_INTERNAL,
            0,
            "portable: {portable}: the child ignores {mask:#x}"
        );
    }
}
