//! Scenarios of fd shapes, sizes, crowds and the spec's environment: extra fds both ways with
//! staged closes, a child closing its own fds, pipes closed by the parent before the child
//! writes, a grandchild holding the pipes, many write sizes, 25 children at once, env and cwd,
//! and fds on the null device.

use super::*;

/// Child fd 3 to fd 4 and fd 5 then stdin to stdout, in that order, as the child reads them.
async fn staged(ctx: &Ctx<'_>) -> Result<(Spawned, Vec<u8>, Vec<u8>), String> {
    let (transport, log) = ctx.spawn(Child::StagedFds).await?;
    let (three, five, zero) = (pattern(3000), b"five\n".to_vec(), b"zero\n".to_vec());
    transport
        .write_to_child(ChildFd(3), &three)
        .map_err(|e| e.to_string())?;
    transport
        .write_to_child(ChildFd(5), &five)
        .map_err(|e| e.to_string())?;
    transport.write(&zero).map_err(|e| e.to_string())?;
    transport.close_child_fd(ChildFd(3));
    transport.close_child_fd(ChildFd(5));
    transport.close_stdin();
    let stdout = [five, zero].concat();
    Ok(((transport, log), three, stdout))
}

scenarios! {
    SHAPES;
    extra_fds_both_ways_with_staged_closes_carry_their_bytes => |ctx| {
        let ((transport, log), three, stdout) = staged(ctx).await?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(log.bytes(ChildFd(4)) == three, "fd 4: {} bytes, expected {}", log.bytes(ChildFd(4)).len(), three.len());
        ensure!(log.bytes(ChildFd::STDOUT) == stdout, "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        check_order(&log.events(), &[ChildFd(0), ChildFd(1), ChildFd(3), ChildFd(4), ChildFd(5)])
    }

    an_inherited_fd_gets_no_loss_and_is_not_writable => |ctx| {
        let ((transport, log), _, _) = staged(ctx).await?;
        let write = transport.write_to_child(ChildFd::STDERR, b"x");
        end(&transport).await?;
        unknown(write, ChildFd::STDERR)?;
        ensure!(count(&log.events(), &Event::Lost(ChildFd::STDERR)) == 0, "inherited fd 2 was lost: {:?}", log.events());
        Ok(())
    }

    a_child_closing_its_fds_in_the_order_2_1_0_is_seen_while_it_runs => |ctx| {
        let (transport, log) = ctx.spawn(Child::CloseAllAndWait).await?;
        log.wait_until("the three losses", |events| {
            STD_PIPES.iter().all(|fd| events.contains(&Event::Lost(*fd)))
        })
        .await?;
        let running = transport.pid().is_some();
        let exited_early = log.events().iter().any(|e| matches!(e, Event::Exited(_)));
        transport.signal_process(Signal::Kill).map_err(|e| e.to_string())?;
        let end = end(&transport).await?;
        ensure!(running && !exited_early, "the child ended before its losses were seen");
        ensure!(end == ProcessEnd::from_signal(9), "end: {end:?}");
        check_order(&log.events(), &STD_PIPES)
    }

    stdout_closed_before_the_child_writes_kills_it_by_sigpipe => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.close_stdout();
        transport.write(b"nobody reads this\n").map_err(|e| e.to_string())?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(13), "end: {end:?}");
        ensure!(log.bytes(ChildFd::STDOUT).is_empty(), "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        check_order(&log.events(), &STD_PIPES)
    }

    stderr_closed_before_the_child_writes_kills_it_by_sigpipe => |ctx| {
        let (transport, log) = ctx.spawn(Child::EchoToStderr).await?;
        transport.close_stderr();
        transport.write(b"nobody reads this\n").map_err(|e| e.to_string())?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(13), "end: {end:?}");
        ensure!(log.bytes(ChildFd::STDERR).is_empty(), "stderr: {:?}", joined(&log, ChildFd::STDERR));
        check_order(&log.events(), &STD_PIPES)
    }

    a_grandchild_holding_the_pipes_does_not_hold_lose_connection => |ctx| {
        let (transport, log) = ctx
            .spawn_reacting(Child::Grandchild, |event, transport| {
                if matches!(event, Event::Data(ChildFd::STDOUT, _)) {
                    transport.lose_connection();
                }
            })
            .await?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(joined(&log, ChildFd::STDOUT) == READY, "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        check_order(&log.events(), &STD_PIPES)
    }

    a_term_then_a_kill_ends_a_child_that_ignores_term => |ctx| {
        let (transport, log) = ctx.spawn(Child::IgnoreTerm).await?;
        wait_ready(&log).await?;
        transport.signal_process(Signal::Term).map_err(|e| e.to_string())?;
        transport.write(b"still here\n").map_err(|e| e.to_string())?;
        echoed(&log, READY.len() + 11).await?;
        transport.signal_process(Signal::Kill).map_err(|e| e.to_string())?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(9), "end: {end:?}");
        check_order(&log.events(), &STD_PIPES)
    }

    ten_writes_of_7007_bytes_and_a_write_sequence_arrive_whole => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        let mut expected = Vec::new();
        for i in 0..10u8 {
            let chunk: Vec<u8> = (0..7007).map(|j| b'a' + ((i as usize + j) % 26) as u8).collect();
            transport.write(&chunk).map_err(|e| e.to_string())?;
            expected.extend_from_slice(&chunk);
        }
        let pieces: [&[u8]; 4] = [b"", b"x", &pattern(65_537), b"end\n"];
        transport.write_sequence(&pieces).map_err(|e| e.to_string())?;
        pieces.iter().for_each(|p| expected.extend_from_slice(p));
        transport.close_stdin();
        end(&transport).await?;
        ensure!(log.bytes(ChildFd::STDOUT) == expected, "stdout: {} bytes, expected {}", log.bytes(ChildFd::STDOUT).len(), expected.len());
        Ok(())
    }

    twenty_five_children_at_once_each_get_their_own_bytes => |ctx| {
        let mut children = Vec::new();
        for i in 0..25 {
            let (transport, log) = ctx.spawn(Child::Echo).await?;
            transport.write(format!("child {i}\n").as_bytes()).map_err(|e| e.to_string())?;
            children.push((transport, log));
        }
        for (transport, _) in &children {
            transport.close_stdin();
        }
        for (i, (transport, log)) in children.iter().enumerate() {
            let end = end(transport).await?;
            ensure!(end == ProcessEnd::Done, "child {i}: {end:?}");
            ensure!(joined(log, ChildFd::STDOUT) == format!("child {i}\n"), "child {i}: {:?}", joined(log, ChildFd::STDOUT));
            check_order(&log.events(), &STD_PIPES)?;
        }
        Ok(())
    }

    the_spec_environment_reaches_the_child => |ctx| {
        let spec = ctx.catalog.spec(Child::PrintEnv).env(ENV_NAME, "from the spec");
        let (transport, log) = ctx.spawn_spec(spec).await?;
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == "from the spec", "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        Ok(())
    }

    the_spec_working_directory_is_the_childs => |ctx| {
        let spec = ctx.catalog.spec(Child::PrintCwd).cwd("/");
        let (transport, log) = ctx.spawn_spec(spec).await?;
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == "/\n", "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        Ok(())
    }

    the_spec_process_group_and_arg0_reach_the_child => |ctx| {
        let spec = ctx.catalog.spec(Child::PrintGroupAndArgv0).process_group(0).arg0("contract-arg0");
        let (transport, log) = ctx.spawn_spec(spec).await?;
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == "leader\ncontract-arg0\n", "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        let plain = ctx.catalog.spec(Child::PrintGroupAndArgv0);
        let program = plain.get_executable().to_string_lossy().into_owned();
        let (transport, log) = ctx.spawn_spec(plain).await?;
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == format!("member\n{program}\n"), "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        Ok(())
    }

    a_spawner_that_takes_parent_fds_gives_the_child_that_fd => |ctx| {
        // An OS pipe of this process as the child's stdout, `Inherit(n)`: a spawner that says
        // it takes files as the child's own fds (`inherits_parent_fds`) must hand it over, so
        // that the command front door can give a real child a file. Any spawner takes the
        // spec and reports nothing on that fd: it is no pipe of the transport's.
        // Windows has handles, not fd numbers: a spec cannot name one (docs/fidelity.md).
        #[cfg(not(unix))]
        return Err(format!("no parent fd number to hand over on this platform ({:?})", ctx.catalog.spec(Child::Talk).command_line()));
        #[cfg(unix)]
        {
        let (mut reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
        let raw = std::os::fd::AsRawFd::as_raw_fd(&writer);
        let spec = ctx.catalog.spec(Child::Talk).child_fd(ChildFd::STDOUT, ChildFdMapping::Inherit(raw));
        let (transport, log) = ctx.spawn_spec(spec).await?;
        drop(writer);
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(log.bytes(ChildFd::STDOUT).is_empty(), "an inherited fd reached the protocol: {:?}", joined(&log, ChildFd::STDOUT));
        if ctx.spawner.inherits_parent_fds() {
            let mut through_the_pipe = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut through_the_pipe).map_err(|e| e.to_string())?;
            ensure!(through_the_pipe == TALK_STDOUT.as_bytes(), "the pipe got {:?}, expected {TALK_STDOUT:?}", String::from_utf8_lossy(&through_the_pipe));
        }
        Ok(())
        }
    }

    abort_connection_closes_every_standard_pipe => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.abort_connection();
        let write = transport.write(b"after the abort");
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done || end == ProcessEnd::from_signal(13), "end: {end:?}");
        closed(write, ChildFd::STDIN)?;
        check_order(&log.events(), &STD_PIPES)
    }

    stop_producing_on_the_transport_closes_every_standard_pipe => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.stop_producing();
        let write = transport.write(b"after the stop");
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done || end == ProcessEnd::from_signal(13), "end: {end:?}");
        closed(write, ChildFd::STDIN)?;
        check_order(&log.events(), &STD_PIPES)
    }

    write_sequence_after_close_stdin_is_child_fd_closed => |ctx| {
        write_after(ctx, |t| t.close_stdin(), |t| t.write_sequence(&[b"a", b"b"])).await
    }

    a_kill_ends_a_waiting_child_with_signal_9 => |ctx| {
        let (transport, log) = ctx.spawn(Child::WaitForSignal).await?;
        wait_ready(&log).await?;
        transport.signal_process(Signal::Kill).map_err(|e| e.to_string())?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(9), "end: {end:?}");
        check_order(&log.events(), &STD_PIPES)
    }

    the_pid_is_one_value_until_the_exit_is_known_then_gone_for_good => |ctx| {
        let notes = Notes::default();
        let inside = notes.clone();
        let (transport, log) = ctx
            .spawn_reacting(Child::Talk, move |_, transport| {
                inside.add(format!("{:?}", transport.pid()));
            })
            .await?;
        end(&transport).await?;
        let pids = notes.all();
        // Some(pid) first (make_connection), then None from the reap on: never back, never
        // another pid. The reap may come before `process_exited` is delivered.
        let known = pids.iter().take_while(|p| p.starts_with("Some(")).count();
        ensure!(known >= 1 && pids[..known].iter().all(|p| *p == pids[0]), "pids: {pids:?}");
        ensure!(pids[known..].iter().all(|p| p == "None"), "pids: {pids:?}");
        check_order(&log.events(), &STD_PIPES)
    }

    a_stdin_on_the_null_device_reads_as_end_of_file_at_once_and_is_not_writable => |ctx| {
        let spec = ctx.catalog.spec(Child::Echo).child_fd(ChildFd::STDIN, ChildFdMapping::Null);
        let (transport, log) = ctx.spawn_spec(spec).await?;
        let write = transport.write(b"nowhere\n");
        let end = end(&transport).await?;
        unknown(write, ChildFd::STDIN)?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(log.bytes(ChildFd::STDOUT).is_empty(), "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        ensure!(count(&log.events(), &Event::Lost(ChildFd::STDIN)) == 0, "the null stdin was lost: {:?}", log.events());
        check_order(&log.events(), &[ChildFd::STDOUT, ChildFd::STDERR])
    }

    output_to_the_null_device_is_discarded_without_events => |ctx| {
        let spec = ctx.catalog.spec(Child::Talk).child_fd(ChildFd::STDOUT, ChildFdMapping::Null);
        let (transport, log) = ctx.spawn_spec(spec).await?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(log.bytes(ChildFd::STDERR) == TALK_STDERR.as_bytes(), "stderr: {:?}", joined(&log, ChildFd::STDERR));
        let stdout_events = log.events().iter().filter(|e| matches!(e, Event::Data(fd, _) | Event::Lost(fd) if *fd == ChildFd::STDOUT)).count();
        ensure!(stdout_events == 0, "events on the null stdout: {:?}", log.events());
        check_order(&log.events(), &[ChildFd::STDIN, ChildFd::STDERR])
    }
}
