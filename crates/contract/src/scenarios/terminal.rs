//! Scenarios of children on a pseudo-terminal (`use_pty`): the fd shape, echo and canonical
//! input, the end of input, the size at spawn and after a resize, the hang-up, and the specs
//! and calls a terminal refuses.

use process_transport_api::PtySize;

use super::*;
use crate::catalog::TERMINAL_SIZE;

/// The fds of a terminal child's transport.
const TERMINAL: [ChildFd; 2] = [ChildFd::STDIN, ChildFd::STDOUT];

/// Waits until the terminal has shown `wanted` (as fd 1).
async fn shown(log: &Log, wanted: &str) -> Check {
    log.wait_until(&format!("{wanted:?} on the terminal"), |events| {
        String::from_utf8_lossy(&stdout_of(events)).contains(wanted)
    })
    .await
}

scenarios! {
    TERMINALS;
    a_terminal_child_has_a_terminal_on_fds_0_1_2_and_all_its_output_comes_as_fd_1 => |ctx| {
        let (transport, log) = ctx.spawn(Child::TerminalCheck).await?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(joined(&log, ChildFd::STDOUT) == "tty\r\nerr\r\n", "terminal: {:?}", joined(&log, ChildFd::STDOUT));
        check_order(&log.events(), &TERMINAL)
    }

    a_terminal_echoes_typed_lines_and_close_stdin_ends_the_input_after_an_unfinished_line => |ctx| {
        let (transport, log) = ctx.spawn(Child::TerminalEcho).await?;
        transport.write(b"hello\n").map_err(|e| e.to_string())?;
        shown(&log, "hello\r\nhello\r\n").await?;
        transport.write(b"tail").map_err(|e| e.to_string())?;
        transport.close_stdin();
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(joined(&log, ChildFd::STDOUT) == "hello\r\nhello\r\ntailtail", "terminal: {:?}", joined(&log, ChildFd::STDOUT));
        check_order(&log.events(), &TERMINAL)
    }

    the_terminal_size_set_at_spawn_and_by_resize_pty_is_what_the_child_sees => |ctx| {
        let (transport, log) = ctx.spawn(Child::TerminalSize).await?;
        let first = format!("{} {}\r\n", TERMINAL_SIZE.rows, TERMINAL_SIZE.cols);
        shown(&log, &first).await?;
        transport.resize_pty(PtySize::new(40, 120)).map_err(|e| e.to_string())?;
        transport.write(b"go\n").map_err(|e| e.to_string())?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        let expected = format!("{first}go\r\n40 120\r\n");
        ensure!(joined(&log, ChildFd::STDOUT) == expected, "terminal: {:?}", joined(&log, ChildFd::STDOUT));
        // The terminal is gone: a resize has nobody to tell, and is no error.
        transport.resize_pty(PtySize::new(10, 10)).map_err(|e| e.to_string())?;
        check_order(&log.events(), &TERMINAL)
    }

    lose_connection_on_a_terminal_hangs_the_child_up => |ctx| {
        let (transport, log) = ctx.spawn(Child::TerminalWait).await?;
        shown(&log, READY.trim_end()).await?;
        transport.lose_connection();
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(1), "end: {end:?}");
        check_order(&log.events(), &TERMINAL)
    }

    a_terminal_child_refuses_writes_to_fd_2_and_fd_3 => |ctx| {
        let (transport, log) = ctx.spawn(Child::TerminalEcho).await?;
        let two = transport.write_to_child(ChildFd::STDERR, b"x");
        let three = transport.write_to_child(ChildFd(3), b"x");
        transport.close_stdin();
        end(&transport).await?;
        unknown(two, ChildFd::STDERR)?;
        unknown(three, ChildFd(3))?;
        check_order(&log.events(), &TERMINAL)
    }

    a_pty_spec_that_maps_another_fd_is_an_invalid_spec => |ctx| {
        let spec = ctx.catalog.spec(Child::TerminalEcho).child_fd(ChildFd(3), ChildFdMapping::ParentReads);
        match ctx.spawn_spec(spec).await {
            Err(why) if why.contains("invalid spawn spec") && why.contains("child fd 3") => Ok(()),
            Err(why) => Err(format!("expected InvalidSpec naming child fd 3, got: {why}")),
            Ok(_) => Err("a pty spec mapping fd 3 was spawned".into()),
        }
    }

    resize_pty_without_a_terminal_is_no_terminal => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let resized = transport.resize_pty(PtySize::new(40, 120));
        transport.close_stdin();
        end(&transport).await?;
        match resized {
            Err(TransportError::NoTerminal) => Ok(()),
            other => Err(format!("expected Err(NoTerminal), got {other:?}")),
        }
    }
}
