//! Which spawner a [`Command`](crate::Command) runs on when it names none: the scoped default.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use process_transport_api::ProcessSpawner;

thread_local! {
    /// The defaults set on this thread and not yet dropped, innermost last, each with the id
    /// of its guard: a guard takes out its own entry, whatever the order guards drop in.
    static SCOPES: RefCell<Vec<(u64, Arc<dyn ProcessSpawner>)>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// Puts `spawner` in place as this thread's innermost default; the id takes it out.
fn enter(spawner: Arc<dyn ProcessSpawner>) -> u64 {
    let id = NEXT_ID.with(|next| {
        let id = next.get();
        next.set(id + 1);
        id
    });
    SCOPES.with(|scopes| scopes.borrow_mut().push((id, spawner)));
    id
}

/// Takes out the default `id` put in place, wherever it is among the others.
fn leave(id: u64) {
    // During the thread's teardown the list may be gone already, and with it the default.
    let _ = SCOPES.try_with(|scopes| {
        let mut scopes = scopes.borrow_mut();
        if let Some(at) = scopes.iter().rposition(|(held, _)| *held == id) {
            scopes.remove(at);
        }
    });
}

/// The spawner in scope on this thread, if any: the innermost default still in place.
pub(crate) fn current() -> Option<Arc<dyn ProcessSpawner>> {
    SCOPES.with(|scopes| scopes.borrow().last().map(|(_, spawner)| spawner.clone()))
}

/// The spawner a command without its own runs on: the scoped default, else real processes.
pub(crate) fn resolve(program: &str) -> io::Result<Arc<dyn ProcessSpawner>> {
    if let Some(spawner) = current() {
        return Ok(spawner);
    }
    fallback(program)
}

#[cfg(feature = "real")]
fn fallback(_program: &str) -> io::Result<Arc<dyn ProcessSpawner>> {
    static REAL: std::sync::OnceLock<Arc<dyn ProcessSpawner>> = std::sync::OnceLock::new();
    Ok(REAL
        .get_or_init(|| Arc::new(process_transport_real::RealSpawner::new()))
        .clone())
}

#[cfg(not(feature = "real"))]
fn fallback(program: &str) -> io::Result<Arc<dyn ProcessSpawner>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "cannot spawn {program:?}: no spawner is in scope (Command::spawner, set_default \
             or with_default) and the `real` feature, which makes real processes the \
             default, is off"
        ),
    ))
}

/// Makes `spawner` the default of this thread until the returned guard drops: every
/// [`Command`](crate::Command) that does not name its own spawner runs on it. Nested calls
/// restore the outer default when their guard drops. Guards may drop in any order (the
/// fields of a fixture drop first to last): the default is always the innermost one whose
/// guard is still alive, and none once every guard has dropped.
///
/// The default is the thread's: a future polled on another thread (a multi-thread runtime's
/// worker, a task started with `tokio::spawn`) does not see it. For a future, use
/// [`with_default`].
///
/// ```
/// use process_transport_command::{set_default, Command};
/// use process_transport_fakes::{MemoryProcessReactor, Script};
/// use std::sync::Arc;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// let reactor = MemoryProcessReactor::strict();
/// reactor.register(["git", "rev-parse", "HEAD"], Script::new().stdout("abc123\n").exit(0));
/// let _guard = set_default(Arc::new(reactor));
///
/// // Code that never names a spawner.
/// let out = Command::new("git").args(["rev-parse", "HEAD"]).output().await?;
/// assert_eq!(out.stdout, b"abc123\n");
/// # Ok(()) }
/// ```
pub fn set_default(spawner: Arc<dyn ProcessSpawner>) -> DefaultGuard {
    DefaultGuard {
        id: enter(spawner),
        _not_send: PhantomData,
    }
}

/// Restores the previous default spawner of the thread when dropped; see [`set_default`].
#[must_use = "the default spawner is restored as soon as the guard drops"]
pub struct DefaultGuard {
    id: u64,
    /// The guard restores the default of the thread that made it.
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for DefaultGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultGuard")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for DefaultGuard {
    fn drop(&mut self) {
        leave(self.id);
    }
}

/// Runs `future` with `spawner` as the default spawner: every poll of it, on whatever thread,
/// sees `spawner`, across `.await`s. Tasks that `future` starts with `tokio::spawn` are not
/// part of it; wrap them as well.
///
/// ```
/// use process_transport_command::{with_default, Command};
/// use process_transport_fakes::{MemoryProcessReactor, Script};
/// use std::sync::Arc;
///
/// async fn head_commit() -> std::io::Result<String> {
///     let out = Command::new("git").args(["rev-parse", "HEAD"]).output().await?;
///     Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
/// }
///
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let reactor = MemoryProcessReactor::strict();
/// reactor.register(["git", "rev-parse", "HEAD"], Script::new().stdout("abc123\n").exit(0));
/// let commit = tokio::spawn(with_default(Arc::new(reactor), head_commit())).await??;
/// assert_eq!(commit, "abc123");
/// # Ok(()) }
/// ```
pub fn with_default<F: Future>(spawner: Arc<dyn ProcessSpawner>, future: F) -> WithDefault<F> {
    WithDefault {
        spawner,
        future: Box::pin(future),
    }
}

/// The future of [`with_default`].
#[must_use = "futures do nothing unless polled"]
pub struct WithDefault<F> {
    spawner: Arc<dyn ProcessSpawner>,
    future: Pin<Box<F>>,
}

impl<F> fmt::Debug for WithDefault<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithDefault").finish_non_exhaustive()
    }
}

impl<F: Future> Future for WithDefault<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _guard = set_default(self.spawner.clone());
        self.future.as_mut().poll(cx)
    }
}
