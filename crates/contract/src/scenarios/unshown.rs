//! Scenarios of section 4's rule that no call fails because of a change the protocol has not
//! been shown yet: a child can exit, close or die at any instant, and the protocol learns it
//! from an event.

use super::*;

scenarios! {
    UNSHOWN;
    a_write_racing_the_exit_of_a_child_that_reads_nothing_succeeds => |ctx| {
        let notes = Notes::default();
        let inside = notes.clone();
        let (transport, log) = ctx
            .spawn_reacting(Child::Exit(0), move |event, transport| {
                if *event == Event::Connected {
                    inside.add(format!("{:?}", transport.write(&pattern(4096))));
                    inside.add(format!("{:?}", transport.write(b"more")));
                }
            })
            .await?;
        end(&transport).await?;
        ensure!(notes.all() == ["Ok(())", "Ok(())"], "writes in make_connection: {:?}", notes.all());
        check_order(&log.events(), &STD_PIPES)
    }

    a_write_after_a_fatal_signal_succeeds_until_the_loss_of_stdin_is_shown => |ctx| {
        let notes = Notes::default();
        let inside = notes.clone();
        let (transport, log) = ctx
            .spawn_reacting(Child::Echo, move |event, transport| match event {
                Event::Data(ChildFd::STDOUT, _) if inside.all().is_empty() => {
                    inside.add(format!("signal {:?}", transport.signal_process(Signal::Kill)));
                    inside.add(format!("write {:?}", transport.write(b"late")));
                }
                Event::Lost(ChildFd::STDIN) => {
                    inside.add(format!("write after the loss {:?}", transport.write(b"later")));
                }
                _ => {}
            })
            .await?;
        transport.write(b"ping").map_err(|e| e.to_string())?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(9), "end: {end:?}");
        ensure!(
            notes.all() == [
                "signal Ok(())",
                "write Ok(())",
                "write after the loss Err(ChildFdClosed(ChildFd(0)))",
            ],
            "calls: {:?}",
            notes.all()
        );
        check_order(&log.events(), &STD_PIPES)
    }

    a_signal_sent_when_stdin_is_lost_is_accepted => |ctx| {
        let notes = Notes::default();
        let inside = notes.clone();
        let (transport, log) = ctx
            .spawn_reacting(Child::Echo, move |event, transport| {
                if *event == Event::Lost(ChildFd::STDIN) {
                    inside.add(format!("{:?}", transport.signal_process(Signal::Term)));
                }
            })
            .await?;
        transport.write(b"line\n").map_err(|e| e.to_string())?;
        transport.close_stdin();
        let end = end(&transport).await?;
        // The end of file and the signal race in a real child: either may end it.
        ensure!(
            end == ProcessEnd::Done || end == ProcessEnd::from_signal(15),
            "end: {end:?}"
        );
        ensure!(notes.all() == ["Ok(())"], "signal inside the loss of stdin: {:?}", notes.all());
        check_order(&log.events(), &STD_PIPES)
    }

    a_signal_racing_the_exit_fails_only_once_the_exit_was_shown => |ctx| {
        let notes = Notes::default();
        let inside = notes.clone();
        let mut shown = false;
        let (transport, log) = ctx
            .spawn_reacting(Child::Exit(0), move |event, transport| {
                shown |= matches!(event, Event::Exited(_));
                let result = transport.signal_process(Signal::Term);
                match (shown, result) {
                    (false, Ok(())) | (true, Err(TransportError::ProcessExitedAlready)) => {}
                    (shown, other) => inside.add(format!("exit shown {shown}: {other:?}")),
                }
            })
            .await?;
        end(&transport).await?;
        ensure!(notes.all().is_empty(), "signals: {:?}", notes.all());
        check_order(&log.events(), &STD_PIPES)
    }

    an_unregistered_producer_hears_nothing_queued_before => |ctx| {
        let producer = RecordingProducer::new();
        let registered = producer.clone();
        let notes = Notes::default();
        let inside = notes.clone();
        let (transport, log) = ctx
            .spawn_reacting(Child::WaitForSignal, move |event, transport| {
                if *event == Event::Connected {
                    let registered: Arc<dyn process_transport_api::PushProducer> = registered.clone();
                    inside.add(format!("{:?}", transport.register_producer(registered, true)));
                    // More than the pipe takes: the rest is buffered past the mark and a
                    // pause is queued behind this callback...
                    inside.add(format!("{:?}", transport.write(&pattern(4 * 1024 * 1024))));
                    // ...for a producer that is gone before it is delivered.
                    inside.add(format!("{:?}", transport.unregister_producer()));
                }
            })
            .await?;
        wait_ready(&log).await?;
        transport.signal_process(Signal::Kill).map_err(|e| e.to_string())?;
        end(&transport).await?;
        ensure!(notes.all() == ["Ok(())", "Ok(())", "Ok(())"], "calls: {:?}", notes.all());
        ensure!(producer.calls().is_empty(), "the unregistered producer heard {:?}", producer.calls());
        Ok(())
    }
}
