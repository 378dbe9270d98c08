//! Scenarios of writes and closes: every write call reaches stdin whole and in order, writes
//! to fds that are not the parent's to write or are closed are refused, `close_stdin` flushes
//! and stops the producer, closes of unknown or closed fds, `lose_connection`.

use super::*;

scenarios! {
    WRITES;
    write_write_sequence_and_write_to_child_reach_stdin_in_order => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.write(b"one ").map_err(|e| e.to_string())?;
        transport.write_sequence(&[b"two ", b"three "]).map_err(|e| e.to_string())?;
        transport.write_to_child(ChildFd::STDIN, b"four").map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == "one two three four", "echoed: {:?}", joined(&log, ChildFd::STDOUT));
        Ok(())
    }

    a_large_write_arrives_whole_and_in_order => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        let data = pattern(512 * 1024);
        transport.write(&data).map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(log.bytes(ChildFd::STDOUT) == data, "the echo differs from the 512 KiB written");
        Ok(())
    }

    owned_and_lent_writes_arrive_whole_and_in_order => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        // An owned write larger than a pipe (what the pipe does not take is kept), a lent one
        // behind it, and an owned one onto a buffer that is not empty.
        let data = pattern(3 * 512 * 1024 + 7);
        let (first, rest) = data.split_at(1024 * 1024);
        let (second, third) = rest.split_at(100);
        transport.write_owned(first.to_vec()).map_err(|e| e.to_string())?;
        transport.write(second).map_err(|e| e.to_string())?;
        transport.write_owned(third.to_vec()).map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(log.bytes(ChildFd::STDOUT) == data, "the echo differs from the 1.5 MiB written");
        Ok(())
    }

    writing_to_an_unmapped_fd_is_unknown_child_fd => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let result = transport.write_to_child(ChildFd(9), b"x");
        transport.close_stdin();
        end(&transport).await?;
        unknown(result, ChildFd(9))
    }

    writing_to_a_pipe_the_parent_reads_is_unknown_child_fd => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let result = transport.write_to_child(ChildFd::STDOUT, b"x");
        transport.close_stdin();
        end(&transport).await?;
        unknown(result, ChildFd::STDOUT)
    }

    writing_after_close_child_fd_is_child_fd_closed => |ctx| {
        write_after(ctx, |t| t.close_child_fd(ChildFd::STDIN), |t| t.write_to_child(ChildFd::STDIN, b"x")).await
    }

    writing_after_close_stdin_is_child_fd_closed => |ctx| {
        write_after(ctx, |t| t.close_stdin(), |t| t.write(b"x")).await
    }

    an_owned_write_after_close_stdin_is_child_fd_closed => |ctx| {
        write_after(ctx, |t| t.close_stdin(), |t| t.write_owned(b"x".to_vec())).await
    }

    writing_after_lose_connection_is_child_fd_closed => |ctx| {
        write_after(ctx, |t| t.lose_connection(), |t| t.write_sequence(&[b"x"])).await
    }

    writing_after_the_child_end_was_lost_is_child_fd_closed => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(0)).await?;
        end(&transport).await?;
        closed(transport.write(b"x"), ChildFd::STDIN)
    }

    close_stdin_delivers_the_buffered_bytes_before_end_of_file => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        let data = pattern(3 * 1024 * 1024);
        transport.write(&data).map_err(|e| e.to_string())?;
        transport.close_stdin();
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(log.bytes(ChildFd::STDOUT) == data, "not every buffered byte reached the child");
        Ok(())
    }

    close_stdin_stops_the_registered_producer => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), true).map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(producer.calls() == [ProducerCall::Stop], "producer calls: {:?}", producer.calls());
        Ok(())
    }

    closing_an_unknown_fd_has_no_effect => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.close_child_fd(ChildFd(9));
        transport.write(b"still open").map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == "still open", "echoed: {:?}", joined(&log, ChildFd::STDOUT));
        check_order(&log.events(), &STD_PIPES)
    }

    closing_an_fd_twice_reports_one_loss => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.close_stderr();
        transport.close_stderr();
        transport.close_child_fd(ChildFd::STDERR);
        transport.close_stdin();
        end(&transport).await?;
        check_order(&log.events(), &STD_PIPES)
    }

    closing_a_read_pipe_reports_its_loss_at_once => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.close_stdout();
        log.wait_for(Event::Lost(ChildFd::STDOUT)).await?;
        let milestones = log.milestones();
        transport.close_stdin();
        end(&transport).await?;
        ensure!(milestones == [Event::Connected, Event::Lost(ChildFd::STDOUT)], "before stdin closed: {milestones:?}");
        Ok(())
    }

    lose_connection_closes_every_standard_pipe => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.lose_connection();
        let end = end(&transport).await?;
        // cat ends by itself at end of file, or by SIGPIPE if it wrote after stdout closed.
        ensure!(end == ProcessEnd::Done || end == ProcessEnd::from_signal(13), "end: {end:?}");
        check_order(&log.events(), &STD_PIPES)
    }

    the_child_sees_end_of_file_when_stdin_closes => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        transport.close_stdin();
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "cat did not end at end of file: {end:?}");
        Ok(())
    }
}
