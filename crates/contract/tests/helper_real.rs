//! The contract suite on the real transport with the workspace's helper program (`pt-helper`)
//! in place of `sh` and `cat`: how it runs on Windows (under Wine in CI), and on every other
//! platform too, so the helper is proven where `sh` is there to compare with.

use process_transport_contract::{run_contract_without, scenario_names, Child, HelperCatalog};
use process_transport_real::RealSpawner;

const HELPER: &str = env!("CARGO_BIN_EXE_pt-helper");

/// The scenarios whose children the helper does not play ([`HelperCatalog::plays`]): they
/// need a signal to end or be ignored, fds above 2, a child that closes its own standard fds
/// or dies by SIGPIPE, a process group and `argv[0]`, or a terminal. docs/fidelity.md lists
/// them with the Windows exceptions.
const NOT_PLAYED: [&str; 16] = [
    "an_extra_fd_is_delivered_exactly",
    "death_by_a_signal_is_terminated_with_it",
    "an_ignored_term_leaves_the_child_running",
    "extra_fds_both_ways_with_staged_closes_carry_their_bytes",
    "an_inherited_fd_gets_no_loss_and_is_not_writable",
    "a_child_closing_its_fds_in_the_order_2_1_0_is_seen_while_it_runs",
    "stdout_closed_before_the_child_writes_kills_it_by_sigpipe",
    "stderr_closed_before_the_child_writes_kills_it_by_sigpipe",
    "a_term_then_a_kill_ends_a_child_that_ignores_term",
    "the_spec_process_group_and_arg0_reach_the_child",
    "a_terminal_child_has_a_terminal_on_fds_0_1_2_and_all_its_output_comes_as_fd_1",
    "a_terminal_echoes_typed_lines_and_close_stdin_ends_the_input_after_an_unfinished_line",
    "the_terminal_size_set_at_spawn_and_by_resize_pty_is_what_the_child_sees",
    "lose_connection_on_a_terminal_hangs_the_child_up",
    "a_terminal_child_refuses_writes_to_fd_2_and_fd_3",
    "a_pty_spec_that_maps_another_fd_is_an_invalid_spec",
];

/// On Windows, besides: what a Windows process cannot be or do. docs/fidelity.md says why.
#[cfg(windows)]
const NOT_ON_WINDOWS: &[&str] = &[
    // No signal but Kill: a TERM or a CHLD is NoSuchSignalOnWindows.
    "a_signal_to_a_running_process_is_delivered",
    "a_signal_ignored_by_default_leaves_the_child_running",
    "a_signal_after_the_exit_is_process_exited_already",
    "a_signal_sent_when_stdin_is_lost_is_accepted",
    "a_signal_racing_the_exit_fails_only_once_the_exit_was_shown",
    // TerminateProcess ends a child with exit code 1, not by signal 9.
    "a_signal_by_number_is_delivered",
    "a_write_after_a_fatal_signal_succeeds_until_the_loss_of_stdin_is_shown",
    "a_kill_ends_a_waiting_child_with_signal_9",
    // A Windows child always has fds 0, 1 and 2: a spec without stdin is refused.
    "a_producer_on_a_process_without_stdin_is_stopped_at_once",
    // An overlapped pipe write takes the whole write at once: the buffer never rises above
    // the high-water mark on one write.
    "a_push_producer_is_paused_above_the_high_water_mark",
    "a_push_producer_is_resumed_when_the_buffer_drains",
    // Under Wine a unix path is the child's Z: drive path, printed as Windows writes it.
    "the_spec_working_directory_is_the_childs",
    // Handles, not fd numbers: a spec cannot hand a parent fd over by number.
    "a_spawner_that_takes_parent_fds_gives_the_child_that_fd",
];
#[cfg(not(windows))]
const NOT_ON_WINDOWS: &[&str] = &[];

#[test]
fn the_helper_plays_the_children_any_platform_has() {
    let played: Vec<Child> = Child::ALL
        .into_iter()
        .filter(|child| HelperCatalog::plays(*child))
        .collect();
    assert_eq!(played.len(), 10, "{played:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_transport_keeps_the_contract_with_the_helper_program() {
    let left_out: Vec<&str> = NOT_PLAYED.iter().chain(NOT_ON_WINDOWS).copied().collect();
    let report =
        run_contract_without(&RealSpawner::new(), &HelperCatalog::new(HELPER), &left_out).await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(
        report.outcomes.len(),
        scenario_names().len() - left_out.len()
    );
}
