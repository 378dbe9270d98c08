//! Scenarios of producers and pausing: one producer at a time, a producer without stdin or
//! after its close is stopped, a pull producer resumed at once, a push producer paused above
//! the high-water mark and resumed as it drains, output held while paused.

use super::*;

/// Spawns `Talk` paused from inside `make_connection` and waits for its exit.
async fn spawn_paused_talk(ctx: &Ctx<'_>) -> Result<Spawned, String> {
    let (transport, log) = ctx
        .spawn_reacting(Child::Talk, |event, transport| {
            if *event == Event::Connected {
                transport.pause_producing();
            }
        })
        .await?;
    log.wait_until("process_exited", |events| {
        events.iter().any(|e| matches!(e, Event::Exited(_)))
    })
    .await?;
    Ok((transport, log))
}

scenarios! {
    PRODUCERS;
    registering_a_second_producer_is_producer_already_registered => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        transport.register_producer(RecordingProducer::new(), true).map_err(|e| e.to_string())?;
        let second = transport.register_producer(RecordingProducer::new(), false);
        transport.close_stdin();
        end(&transport).await?;
        ensure!(matches!(second, Err(TransportError::ProducerAlreadyRegistered)), "second register: {second:?}");
        Ok(())
    }

    unregistering_without_a_producer_is_no_producer_registered => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let result = transport.unregister_producer();
        transport.close_stdin();
        end(&transport).await?;
        ensure!(matches!(result, Err(TransportError::NoProducerRegistered)), "unregister: {result:?}");
        Ok(())
    }

    a_producer_on_a_process_without_stdin_is_stopped_at_once => |ctx| {
        let spec = ctx.catalog.spec(Child::Exit(0)).no_child_fd(ChildFd::STDIN);
        let (transport, log) = ctx.spawn_spec(spec).await?;
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), true).map_err(|e| e.to_string())?;
        end(&transport).await?;
        ensure!(producer.calls() == [ProducerCall::Stop], "producer calls: {:?}", producer.calls());
        check_order(&log.events(), &[ChildFd::STDOUT, ChildFd::STDERR])
    }

    a_producer_registered_after_close_stdin_is_stopped_at_once => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        transport.close_stdin();
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), false).map_err(|e| e.to_string())?;
        end(&transport).await?;
        ensure!(producer.calls() == [ProducerCall::Stop], "producer calls: {:?}", producer.calls());
        Ok(())
    }

    a_pull_producer_is_resumed_at_once => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), false).map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(producer.calls() == [ProducerCall::Resume, ProducerCall::Stop], "producer calls: {:?}", producer.calls());
        Ok(())
    }

    a_push_producer_is_paused_above_the_high_water_mark => |ctx| {
        let (transport, log) = ctx.spawn(Child::WaitForSignal).await?;
        wait_ready(&log).await?;
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), true).map_err(|e| e.to_string())?;
        // More than any pipe takes at once, so that the rest is buffered past the mark.
        transport.write(&pattern(4 * 1024 * 1024)).map_err(|e| e.to_string())?;
        let after_write = producer.calls();
        transport.signal_process(Signal::Kill).map_err(|e| e.to_string())?;
        end(&transport).await?;
        ensure!(after_write == [ProducerCall::Pause], "after the write: {after_write:?}");
        ensure!(producer.calls() == [ProducerCall::Pause, ProducerCall::Stop], "producer calls: {:?}", producer.calls());
        Ok(())
    }

    a_push_producer_is_resumed_when_the_buffer_drains => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), true).map_err(|e| e.to_string())?;
        let data = pattern(4 * 1024 * 1024);
        transport.write(&data).map_err(|e| e.to_string())?;
        echoed(&log, data.len()).await?;
        transport.close_stdin();
        end(&transport).await?;
        let calls = producer.calls();
        ensure!(calls == [ProducerCall::Pause, ProducerCall::Resume, ProducerCall::Stop], "producer calls: {calls:?}");
        Ok(())
    }

    pausing_holds_output_but_not_the_exit => |ctx| {
        let (transport, log) = spawn_paused_talk(ctx).await?;
        let before = log.events();
        transport.resume_producing();
        end(&transport).await?;
        ensure!(before.iter().all(|e| !matches!(e, Event::Data(..))), "output while paused: {before:?}");
        Ok(())
    }

    held_output_follows_on_resume => |ctx| {
        let (transport, log) = spawn_paused_talk(ctx).await?;
        transport.resume_producing();
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == TALK_STDOUT, "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        ensure!(joined(&log, ChildFd::STDERR) == TALK_STDERR, "stderr: {:?}", joined(&log, ChildFd::STDERR));
        check_order(&log.events(), &STD_PIPES)
    }
}
