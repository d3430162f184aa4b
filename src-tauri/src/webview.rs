//! How the process is set up before GTK and WebKitGTK start: settings WebKitGTK, JavaScriptCore
//! and glibc read only from the environment, and only once.

/// Settings the app runs with unless the user's environment already sets them.
///
/// `WEBKIT_DISABLE_COMPOSITING_MODE=1`: WebKitGTK paints the page on the CPU instead of
/// compositing it through GL. The window is text, a table and one 2D canvas, nothing a GL
/// compositor speeds up, while that path composited every frame through Mesa (without a GPU:
/// llvmpipe) and kept its buffers in the web process. Measured in the real window under Xvfb
/// with 10 000 items cached (BENCHMARKS.md, App): `J` to the next item painted p50 57 -> 19 ms,
/// p95 125 -> 34 ms, the web process 434 -> 245 MB RSS. WebKitGTK reads this only from the
/// environment, when it makes its first web view; a hardware-acceleration policy set on the
/// view's settings afterwards (Tauri has no earlier hook) leaves the page composited (measured).
/// `WEBKIT_DISABLE_COMPOSITING_MODE=0` brings the compositor back.
///
/// `JSC_forceMiniVMMode=true`: JavaScriptCore in the web process grows its heap by a smaller
/// factor between collections and returns freed pages sooner, as on memory-tight devices; the
/// web process otherwise sizes its heap for the machine's RAM, not for one page of a desk app.
/// `make bench-app`, 10 000 items, 4 runs each interleaved: the web process 168-174 -> 158-159
/// MB PSS; `J` p95 21-24 -> 23-27 ms and `A` p95 23-26 -> 24-27 ms, far inside their 50 ms.
///
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072`: glibc serves blocks of 128 KiB and more
/// with their own mapping, which goes back to the system when freed. By default it raises that
/// threshold to the size of each such block freed (up to 32 MiB), after which the queue's and a
/// sync's multi-megabyte JSON buffers come from its arenas and stay resident once freed. Fixed
/// at its starting value: the app process 123-132 -> 113-116 MB PSS (5 runs each interleaved,
/// 10 000 items), start and keystrokes unchanged.
#[cfg(target_os = "linux")]
const SETTINGS: &[(&str, &str)] = &[
    ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
    ("JSC_forceMiniVMMode", "true"),
    ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072"),
];

/// Set in the environment of the process this starts, so it starts only one.
#[cfg(target_os = "linux")]
const MARK: &str = "COUNTERSIGN_DESK_SETUP";

/// Runs the app again in its own process (same pid, same arguments) with [`SETTINGS`] in its
/// environment, once; returns when that is already done or cannot be done. Setting the running
/// process's environment instead is unsound once other threads may read it (hence `unsafe`
/// `std::env::set_var`, which this workspace forbids); an exec costs a few milliseconds.
#[cfg(target_os = "linux")]
pub fn start_with_settings() {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os(MARK).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    command.args(args).env(MARK, "1");
    for (name, value) in SETTINGS {
        if std::env::var_os(name).is_none() {
            command.env(name, value);
        }
    }
    // Only returns on failure; the app then runs with the environment it has.
    let error = command.exec();
    eprintln!("Countersign Desk: starting with its display settings failed: {error}");
}

#[cfg(not(target_os = "linux"))]
pub fn start_with_settings() {}
