//! Scenarios of signals and the pid: a signal by name or number reaches a running child,
//! numbers that are no signal are refused, a signal after the exit is refused, the pid is
//! known while the child runs and gone after.

use super::*;

/// Sends each of `numbers` to a running `Echo`, which must refuse each as
/// `InvalidSignal` and leave the child running to its normal end.
async fn refused_as_not_signals(ctx: &Ctx<'_>, numbers: &[i32]) -> Check {
    let (transport, _log) = ctx.spawn(Child::Echo).await?;
    let results: Vec<_> = numbers
        .iter()
        .map(|&n| (n, transport.signal_process(Signal::Number(n))))
        .collect();
    transport.close_stdin();
    let end = end(&transport).await?;
    for (n, result) in results {
        ensure!(
            matches!(result, Err(TransportError::InvalidSignal(Signal::Number(got))) if got == n),
            "signal {n}: expected Err(InvalidSignal(Number({n}))), got {result:?}"
        );
    }
    ensure!(end == ProcessEnd::Done, "end: {end:?}");
    Ok(())
}

scenarios! {
    SIGNALS;
    a_signal_to_a_running_process_is_delivered => |ctx| {
        let (transport, log) = ctx.spawn(Child::WaitForSignal).await?;
        wait_ready(&log).await?;
        transport.signal_process(Signal::Term).map_err(|e| e.to_string())?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(15), "end: {end:?}");
        Ok(())
    }

    a_signal_by_number_is_delivered => |ctx| {
        let (transport, log) = ctx.spawn(Child::WaitForSignal).await?;
        wait_ready(&log).await?;
        transport.signal_process(Signal::Number(9)).map_err(|e| e.to_string())?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(9), "end: {end:?}");
        Ok(())
    }

    signal_number_zero_is_refused_as_not_a_signal => |ctx| {
        refused_as_not_signals(ctx, &[0]).await
    }

    a_negative_or_too_high_signal_number_is_refused_as_not_a_signal => |ctx| {
        refused_as_not_signals(ctx, &[-1, Signal::MAX_NUMBER + 1, i32::MIN, i32::MAX]).await
    }

    a_signal_ignored_by_default_leaves_the_child_running => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        for name in ["CHLD", "URG", "WINCH"] {
            let signal: Signal = name.parse().map_err(|e| format!("{e}"))?;
            if let Err(err) = transport.signal_process(signal) {
                transport.close_stdin();
                return Err(format!("SIG{name} was refused: {err}"));
            }
        }
        transport.write(b"alive\n").map_err(|e| e.to_string())?;
        echoed(&log, 6).await?;
        transport.close_stdin();
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(joined(&log, ChildFd::STDOUT) == "alive\n", "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        Ok(())
    }

    a_signal_after_the_exit_is_process_exited_already => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(0)).await?;
        end(&transport).await?;
        match transport.signal_process(Signal::Term) {
            Err(TransportError::ProcessExitedAlready) => Ok(()),
            other => Err(format!("expected Err(ProcessExitedAlready), got {other:?}")),
        }
    }

    a_signal_inside_process_exited_is_process_exited_already => |ctx| {
        let notes = Notes::default();
        let inside = notes.clone();
        let (transport, _log) = ctx
            .spawn_reacting(Child::Exit(0), move |event, transport| {
                if let Event::Exited(_) = event {
                    inside.add(format!("{:?}", transport.signal_process(Signal::Kill)));
                }
            })
            .await?;
        end(&transport).await?;
        ensure!(notes.all() == ["Err(ProcessExitedAlready)"], "inside process_exited: {:?}", notes.all());
        Ok(())
    }

    the_pid_is_known_while_the_process_runs => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let pid = transport.pid();
        transport.close_stdin();
        end(&transport).await?;
        ensure!(pid.is_some_and(|pid| pid > 0), "pid while running: {pid:?}");
        Ok(())
    }

    the_pid_is_none_inside_process_exited => |ctx| {
        let notes = Notes::default();
        let inside = notes.clone();
        let (transport, _log) = ctx
            .spawn_reacting(Child::Exit(0), move |event, transport| {
                if let Event::Exited(_) = event {
                    inside.add(format!("{:?}", transport.pid()));
                }
            })
            .await?;
        end(&transport).await?;
        ensure!(notes.all() == ["None"], "pid inside process_exited: {:?}", notes.all());
        Ok(())
    }

    the_pid_is_none_after_the_end => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(0)).await?;
        end(&transport).await?;
        ensure!(transport.pid().is_none(), "pid after the end: {:?}", transport.pid());
        Ok(())
    }

    an_ignored_term_leaves_the_child_running => |ctx| {
        let (transport, log) = ctx.spawn(Child::IgnoreTerm).await?;
        wait_ready(&log).await?;
        transport.signal_process(Signal::Term).map_err(|e| e.to_string())?;
        transport.write(b"still here\n").map_err(|e| e.to_string())?;
        echoed(&log, READY.len() + "still here\n".len()).await?;
        transport.close_stdin();
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(joined(&log, ChildFd::STDOUT) == format!("{READY}still here\n"), "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        Ok(())
    }
}
