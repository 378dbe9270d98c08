//! Scenarios of the order of events and of how an end is reported: `make_connection` first, each
//! pipe's data then its loss, `process_exited` and `process_ended` once, the end reasons, no
//! callback re-entered, a failed spawn, calls made from inside the last callbacks.

use super::*;

scenarios! {
    EVENTS;
    make_connection_comes_first_and_once => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        let events = log.events();
        ensure!(events.first() == Some(&Event::Connected), "first event: {events:?}");
        ensure!(count(&events, &Event::Connected) == 1, "make_connection more than once: {events:?}");
        Ok(())
    }

    make_connection_is_delivered_during_the_spawn => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        let first = log.events().first().cloned();
        transport.close_stdin();
        end(&transport).await?;
        ensure!(first == Some(Event::Connected), "when spawn_process returned, the first event was {first:?}");
        Ok(())
    }

    stdout_is_delivered_exactly => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == TALK_STDOUT, "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        Ok(())
    }

    stderr_is_delivered_exactly => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDERR) == TALK_STDERR, "stderr: {:?}", joined(&log, ChildFd::STDERR));
        Ok(())
    }

    an_extra_fd_is_delivered_exactly => |ctx| {
        let (transport, log) = ctx.spawn(Child::ExtraFd).await?;
        end(&transport).await?;
        ensure!(joined(&log, ChildFd(3)) == EXTRA_FD_TEXT, "fd 3: {:?}", joined(&log, ChildFd(3)));
        check_order(&log.events(), &[ChildFd(0), ChildFd(1), ChildFd(2), ChildFd(3)])
    }

    every_pipe_is_lost_exactly_once => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        let events = log.events();
        for fd in STD_PIPES {
            ensure!(count(&events, &Event::Lost(fd)) == 1, "fd {fd} lost {} times: {events:?}", count(&events, &Event::Lost(fd)));
        }
        Ok(())
    }

    a_pipe_is_lost_after_its_last_data => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        check_order(&log.events(), &STD_PIPES)
    }

    process_exited_comes_exactly_once => |ctx| {
        let (transport, log) = ctx.spawn(Child::Exit(0)).await?;
        end(&transport).await?;
        let exits = log.events().iter().filter(|e| matches!(e, Event::Exited(_))).count();
        ensure!(exits == 1, "process_exited {exits} times");
        Ok(())
    }

    process_ended_comes_once_and_last => |ctx| {
        let (transport, log) = ctx.spawn(Child::Exit(3)).await?;
        end(&transport).await?;
        check_order(&log.events(), &STD_PIPES)
    }

    ended_resolves_with_the_reason_of_process_ended => |ctx| {
        let (transport, log) = ctx.spawn(Child::Exit(3)).await?;
        let end = end(&transport).await?;
        ensure!(log.ended() == Some(end), "ended() gave {end:?}, process_ended {:?}", log.ended());
        Ok(())
    }

    exit_code_zero_is_done => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(0)).await?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        Ok(())
    }

    a_non_zero_exit_code_is_terminated_with_it => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(3)).await?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Terminated { exit_code: Some(3), signal: None }, "end: {end:?}");
        Ok(())
    }

    death_by_a_signal_is_terminated_with_it => |ctx| {
        let (transport, _log) = ctx.spawn(Child::DieBySignal).await?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(15), "end: {end:?}");
        Ok(())
    }

    no_callback_is_reentered => |ctx| {
        let (transport, log) = ctx
            .spawn_reacting(Child::Echo, |event, transport| match event {
                Event::Connected => {
                    let _ = transport.write(b"ping\n");
                }
                Event::Data(ChildFd::STDOUT, _) => {
                    transport.close_stdin();
                    transport.close_stderr();
                }
                Event::Lost(_) | Event::Exited(_) => {
                    let _ = transport.write(b"late");
                    transport.lose_connection();
                }
                _ => {}
            })
            .await?;
        end(&transport).await?;
        ensure!(log.reentered() == 0, "callbacks were re-entered {} times", log.reentered());
        check_order(&log.events(), &STD_PIPES)
    }

    a_failed_spawn_is_not_found_and_delivers_nothing => |ctx| {
        let (recorder, log) = Recorder::new();
        let spec = ctx.catalog.spec(Child::Missing);
        let expected = spec.get_executable().to_string_lossy().into_owned();
        match within("the spawn", ctx.spawner.spawn_process(recorder, spec)).await? {
            Err(SpawnError::NotFound(exe)) if exe == expected => {}
            Err(other) => return Err(format!("expected NotFound({expected:?}), got {other:?}")),
            Ok(_) => return Err("the spawn of a missing program succeeded".into()),
        }
        ensure!(log.events().is_empty(), "events after a failed spawn: {:?}", log.events());
        Ok(())
    }

    a_process_transport_is_addressed_as_a_process => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(0)).await?;
        end(&transport).await?;
        ensure!(transport.host() == Address::Process, "host: {:?}", transport.host());
        ensure!(transport.peer() == Address::Process, "peer: {:?}", transport.peer());
        Ok(())
    }

    calls_inside_process_ended_are_answered_and_deliver_nothing => |ctx| {
        let notes = Notes::default();
        let inside = notes.clone();
        let (transport, log) = ctx
            .spawn_reacting(Child::Exit(0), move |event, transport| {
                if let Event::Ended(_) = event {
                    inside.add(format!("{:?}", transport.write(b"late")));
                    transport.lose_connection();
                    transport.close_child_fd(ChildFd::STDOUT);
                }
            })
            .await?;
        end(&transport).await?;
        ensure!(notes.all() == ["Err(ChildFdClosed(ChildFd(0)))"], "inside process_ended: {:?}", notes.all());
        check_order(&log.events(), &STD_PIPES)
    }

    data_is_delivered_before_the_exit_that_follows_it => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        let events = log.events();
        let last_data = events.iter().rposition(|e| matches!(e, Event::Data(..)));
        let ended = events.iter().position(|e| matches!(e, Event::Ended(_)));
        ensure!(last_data < ended, "data after process_ended: {events:?}");
        Ok(())
    }
}
