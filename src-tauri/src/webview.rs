//! How WebKitGTK draws the window, decided before the first web view exists.

/// Has WebKitGTK paint the page on the CPU instead of compositing it through GL.
///
/// The window is text, one table and one 2D canvas: nothing a GL compositor speeds up, while the
/// GL path composites every frame through Mesa (without a GPU: llvmpipe) and keeps its buffers
/// in the web process. Measured in the real window under Xvfb with 10 000 items cached
/// (BENCHMARKS.md, App): `J` to the next item painted p50 57 -> 19 ms, p95 125 -> 34 ms, and the
/// web process 434 -> 245 MB RSS. A value the user or the desktop already set wins, so
/// `WEBKIT_DISABLE_COMPOSITING_MODE=0` brings the GL compositor back.
///
/// WebKitGTK reads this only from the environment, when it creates its first web view; a
/// hardware-acceleration policy set on the view's settings afterwards (Tauri gives no earlier
/// hook) leaves the page composited. Call this first in `main`: changing the environment is
/// only sound while no other thread can read it, which is why `std::env::set_var` is unsafe.
#[cfg(target_os = "linux")]
pub fn prefer_cpu_painting() {
    if let Err(e) = glib::setenv("WEBKIT_DISABLE_COMPOSITING_MODE", "1", false) {
        eprintln!("Countersign Desk: could not choose CPU painting: {e}");
    }
}

#[cfg(not(target_os = "linux"))]
pub fn prefer_cpu_painting() {}
