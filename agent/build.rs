//! Lays out the agent's hot code together (see `link/hot-text.ld`).
//!
//! The kernel maps a binary's code into memory 64 KiB around every page
//! that runs ("fault-around"), so code that runs at start and while idle,
//! scattered over the whole binary, makes nearly all of it resident. The
//! linker script gathers those functions into one `.text.hot` section ahead
//! of the rest. `HONEYBEE_HOT_TEXT=off` links without it (to compare, or
//! with a linker that does not take `INSERT` scripts, such as mold).

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=link/hot-text.ld");
    println!("cargo:rerun-if-env-changed=HONEYBEE_HOT_TEXT");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let off = env::var("HONEYBEE_HOT_TEXT").is_ok_and(|v| v == "off");
    if !linux || off {
        return;
    }
    let dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_string());
    println!("cargo:rustc-link-arg-bin=honeybee-agent=-Wl,-T,{dir}/link/hot-text.ld");
}
