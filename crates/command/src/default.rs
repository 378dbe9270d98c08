//! Which spawner a [`Command`](crate::Command) runs on when it names none: the scoped default.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use process_transport_api::ProcessSpawner;

thread_local! {
    /// The defaults set on this thread and not yet dropped, innermost last, each with the id
    /// of its guard: a guard takes out its own entry, whatever the order guards drop in.
    static SCOPES: RefCell<Vec<(u64, Arc<dyn ProcessSpawner>)>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
    /// The default of every thread of a runtime built with [`default_on_runtime`], under
    /// the scoped ones.
    static RUNTIME_DEFAULT: RefCell<Option<Arc<dyn ProcessSpawner>>> = const { RefCell::new(None) };
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

/// The spawner in scope on this thread, if any: the innermost default still in place, else
/// the default of the runtime the thread works for.
pub(crate) fn current() -> Option<Arc<dyn ProcessSpawner>> {
    SCOPES
        .with(|scopes| scopes.borrow().last().map(|(_, spawner)| spawner.clone()))
        .or_else(|| RUNTIME_DEFAULT.with(|default| default.borrow().clone()))
}

/// Makes `spawner` the default of every thread the runtime `builder` builds starts: its
/// workers and its blocking threads, so every task of the runtime (`tokio::spawn`,
/// `JoinSet`, `spawn_blocking`, a `blocking::Command` in one) sees it, under any scoped
/// default. A current-thread runtime runs its tasks on the thread that calls `block_on`,
/// which the runtime does not start: put the spawner in place there with [`set_default`].
///
/// ```
/// use process_transport_command::{default_on_runtime, Command};
/// use process_transport_fakes::{MemoryProcessReactor, Script};
/// use std::sync::Arc;
///
/// let reactor = MemoryProcessReactor::strict();
/// reactor.register(["git", "fetch"], Script::new().exit(0));
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// let runtime = default_on_runtime(&mut builder, Arc::new(reactor.clone()))
///     .enable_all()
///     .build()
///     .unwrap();
/// runtime.block_on(async {
///     // A task the code under test starts: it sees the runtime's default.
///     let job = tokio::spawn(async { Command::new("git").arg("fetch").status().await });
///     assert!(job.await.unwrap().unwrap().success());
/// });
/// assert_eq!(reactor.spawns().len(), 1);
/// ```
pub fn default_on_runtime(
    builder: &mut tokio::runtime::Builder,
    spawner: Arc<dyn ProcessSpawner>,
) -> &mut tokio::runtime::Builder {
    builder
        .on_thread_start(move || {
            RUNTIME_DEFAULT.with(|default| *default.borrow_mut() = Some(spawner.clone()));
        })
        .on_thread_stop(|| {
            let _ = RUNTIME_DEFAULT.try_with(|default| default.borrow_mut().take());
        })
}

/// The environment variable that forbids real processes to commands with no spawner in
/// scope, when set to anything but empty or `0` (see [`forbid_real_processes`]).
pub const FORBID_REAL_VARIABLE: &str = "PROCESS_TRANSPORT_FORBID_REAL";

static FORBIDDEN: AtomicBool = AtomicBool::new(false);
static GLOBAL: OnceLock<Arc<dyn ProcessSpawner>> = OnceLock::new();

/// Forbids real processes to every [`Command`](crate::Command) (and
/// [`blocking::Command`](crate::blocking::Command)) of this process that finds no spawner:
/// none given with `spawner`, none in scope ([`set_default`], [`with_default`]) and no
/// [`set_global_default`]. Such a command then fails with an `io::Error` of kind
/// `PermissionDenied` that names its command line, instead of starting a real process.
/// Setting [`FORBID_REAL_VARIABLE`] does the same for a whole test run (in
/// `.cargo/config.toml`'s `[env]`, say). There is no way back: a test binary that forbids
/// them keeps them forbidden.
///
/// ```
/// use process_transport_command::{forbid_real_processes, Command};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// forbid_real_processes();
/// let err = Command::new("rm").args(["-rf", "build"]).status().await.unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
/// assert!(err.to_string().starts_with("cannot spawn `rm -rf build`: real processes are forbidden"));
/// # }
/// ```
pub fn forbid_real_processes() {
    FORBIDDEN.store(true, Ordering::SeqCst);
}

/// Whether real processes are forbidden, by [`forbid_real_processes`] or by
/// [`FORBID_REAL_VARIABLE`].
pub fn real_processes_forbidden() -> bool {
    FORBIDDEN.load(Ordering::SeqCst)
        || std::env::var_os(FORBID_REAL_VARIABLE)
            .is_some_and(|value| !value.is_empty() && value != "0")
}

/// Makes `spawner` the default of every thread of this process, under any scoped default:
/// for a test binary that runs one test per process, or whose tests all share one fake.
/// Set once, as `tracing`'s global default is.
///
/// # Errors
/// [`GlobalDefaultAlreadySet`] when a global default was set before; the first stays.
pub fn set_global_default(spawner: Arc<dyn ProcessSpawner>) -> Result<(), GlobalDefaultAlreadySet> {
    GLOBAL.set(spawner).map_err(|_| GlobalDefaultAlreadySet)
}

/// [`set_global_default`] was called a second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalDefaultAlreadySet;

impl fmt::Display for GlobalDefaultAlreadySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a global default spawner was set already; it stays in place")
    }
}

impl std::error::Error for GlobalDefaultAlreadySet {}

/// The spawner a command without its own runs on: the scoped default, else the global one,
/// else real processes, unless they are forbidden.
pub(crate) fn resolve(command_line: &str) -> io::Result<Arc<dyn ProcessSpawner>> {
    if let Some(spawner) = current().or_else(|| GLOBAL.get().cloned()) {
        return Ok(spawner);
    }
    if real_processes_forbidden() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "cannot spawn `{command_line}`: real processes are forbidden \
                 ({FORBID_REAL_VARIABLE} or forbid_real_processes) and no spawner is in scope; \
                 give the command one with Command::spawner, or put one in scope with \
                 set_default, with_default or set_global_default"
            ),
        ));
    }
    fallback(command_line)
}

#[cfg(feature = "real")]
fn fallback(_command_line: &str) -> io::Result<Arc<dyn ProcessSpawner>> {
    static REAL: OnceLock<Arc<dyn ProcessSpawner>> = OnceLock::new();
    Ok(REAL
        .get_or_init(|| Arc::new(process_transport_real::RealSpawner::new()))
        .clone())
}

#[cfg(not(feature = "real"))]
fn fallback(command_line: &str) -> io::Result<Arc<dyn ProcessSpawner>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "cannot spawn `{command_line}`: no spawner is in scope (Command::spawner, \
             set_default, with_default or set_global_default) and the `real` feature, which \
             makes real processes the default, is off"
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
