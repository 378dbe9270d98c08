//! What one live, idle child costs: bytes of heap (counted by a counting global allocator)
//! and file descriptors (counted in /proc/self/fd), for a real `cat` waiting on its stdin and
//! for a fake child of a `MemoryProcessReactor`, each measured over many children at once.
//!
//! `cargo bench -p process-transport-fakes --bench idle`; results in docs/benchmarks.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use process_transport_api::{ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnSpec};
use process_transport_fakes::{MemoryProcessReactor, Script};
use process_transport_real::RealSpawner;

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on as it came.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CHILDREN: usize = 200;

struct Idle;
impl ProcessProtocol for Idle {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Spawns `CHILDREN` idle children on `spawner` and reports the heap and fds each holds.
async fn measure(name: &str, spawner: &dyn ProcessSpawner) -> Vec<Arc<dyn ProcessTransport>> {
    let (heap, open) = (LIVE.load(Ordering::SeqCst), fds());
    let mut children = Vec::with_capacity(CHILDREN);
    let reserved = LIVE.load(Ordering::SeqCst);
    for _ in 0..CHILDREN {
        children.push(
            spawner
                .spawn_process(Box::new(Idle), SpawnSpec::new("cat"))
                .await
                .expect("cat starts"),
        );
    }
    let per_child = (LIVE.load(Ordering::SeqCst) - reserved) as f64 / CHILDREN as f64;
    let fds_per_child = (fds() - open) as f64 / CHILDREN as f64;
    println!(
        "{name}: {per_child:.0} bytes of heap and {fds_per_child:.2} fds per idle child \
         ({CHILDREN} at once; {} bytes of heap before)",
        heap
    );
    children
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let real = RealSpawner::new();
        let children = measure("RealSpawner, `cat` waiting on stdin", &real).await;
        for child in &children {
            child.close_stdin();
        }
        for child in &children {
            child.ended().await;
        }
        drop(children);

        let reactor = MemoryProcessReactor::strict();
        reactor.register(["cat"], Script::new());
        let children = measure(
            "MemoryProcessReactor, a scripted `cat` that waits",
            &reactor,
        )
        .await;
        drop(children);
    });
}
