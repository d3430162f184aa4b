// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // First, while this is the only thread: it sets the environment WebKit reads.
    countersign_desk_app::webview::prefer_cpu_painting();
    countersign_desk_app::run();
}
