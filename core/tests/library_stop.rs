//! The core as a library: `Core::stop` returns and leaves its host running.

use std::time::{Duration, Instant};

use honeybee_core::config::Config;
use honeybee_core::server::Core;

#[test]
fn stop_returns_and_never_ends_the_host_process() {
    let dir = std::env::temp_dir().join(format!("hb-library-stop-{}", std::process::id()));
    let config = Config {
        bind: "127.0.0.1".into(),
        node_port: 0,
        api_port: 0,
        stream_port: 0,
        data_dir: dir.clone(),
        api_token: "library-stop-token".into(),
        ..Config::default()
    };
    let core = Core::start(&config).expect("the core starts");
    let started = Instant::now();
    core.stop();
    println!("Core::stop took {:?}", started.elapsed());
    // The binary's shutdown limit is 4.5 s: a watchdog left armed by the
    // library would have ended this test process by now.
    std::thread::sleep(Duration::from_secs(6));
    let core = Core::start(&config).expect("the host can start the core again");
    core.stop();
    std::fs::remove_dir_all(&dir).ok();
}
