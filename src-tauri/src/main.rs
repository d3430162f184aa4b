// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // First: it may start the app over with the settings WebKitGTK reads at start.
    countersign_desk_app::webview::start_with_settings();
    countersign_desk_app::run();
}
