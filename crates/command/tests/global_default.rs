//! `set_global_default`: one spawner for every thread of the process, under scoped defaults.
//! In a binary of its own: the global default is process-wide and set once.

use std::sync::Arc;

use process_transport_command::{
    set_default, set_global_default, Command, GlobalDefaultAlreadySet,
};
use process_transport_fakes::{MemoryProcessReactor, Script};

fn answering(text: &'static str) -> MemoryProcessReactor {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["who"], Script::new().stdout(text).exit(0));
    reactor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_default_reaches_every_thread_and_a_scoped_default_wins_over_it() {
    let global = answering("global");
    set_global_default(Arc::new(global.clone())).expect("the first global default");
    assert_eq!(
        set_global_default(Arc::new(answering("second"))),
        Err(GlobalDefaultAlreadySet)
    );
    let in_a_task = tokio::spawn(async { Command::new("who").output().await })
        .await
        .expect("joined")
        .expect("runs on the global default");
    assert_eq!(in_a_task.stdout, b"global");
    let blocking = tokio::task::spawn_blocking(|| {
        process_transport_command::blocking::Command::new("who").output()
    })
    .await
    .expect("joined")
    .expect("runs on the global default");
    assert_eq!(blocking.stdout, b"global");
    {
        let _scoped = set_default(Arc::new(answering("scoped")));
        assert_eq!(
            Command::new("who").output().await.unwrap().stdout,
            b"scoped"
        );
    }
    assert_eq!(global.spawns().len(), 2);
}
