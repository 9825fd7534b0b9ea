//! The Windows agent's MSI: `packaging/windows/build-msi.sh` run here on the
//! `.exe` of `cross/build.sh x86_64-pc-windows-gnu` (`$HONEYBEE_WINDOWS_AGENT`
//! or `dist/`), into a temporary dist folder, and its tables read back with
//! msitools (`msiinfo export`, `msiextract`):
//!
//! - the two files, byte for byte the `.exe` and `configs/agent-windows.toml`,
//!   under `C:\Program Files\HoneyBee` and `C:\ProgramData\HoneyBee`;
//! - the HoneyBeeAgent service: own process, automatic start,
//!   `NT AUTHORITY\LocalService`, `service run`; stopped on install and
//!   uninstall and deleted on uninstall, never started by the installer;
//! - `service prepare` (ACLs, firewall rule) and `service cleanup` as
//!   deferred, not impersonated custom actions running the installed exe,
//!   sequenced where deferred actions can run and where the exe exists.
//!
//! Installing and removing it under Wine is `windows_service_wine.rs`. Without wixl, msitools or the `.exe` the
//! test says SKIPPED, and fails under CI ([`honeybee_tests::skip`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use honeybee_tests::skip::skip;
use honeybee_tests::windows::{have, root, windows_exe};
use honeybee_tests::TempDir;

const TEST: &str = "windows_msi";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One table as rows of column name → value (`msiinfo export` prints the
/// column names, their types and the table's keys before the rows).
fn table(msi: &Path, name: &str) -> Vec<BTreeMap<String, String>> {
    let out = Command::new("msiinfo")
        .arg("export")
        .arg(msi)
        .arg(name)
        .output()
        .expect("msiinfo runs");
    assert!(out.status.success(), "msiinfo export {name}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let mut lines = text.lines();
    let columns: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    lines
        .skip(2)
        .map(|l| {
            columns
                .iter()
                .zip(l.split('\t').chain(std::iter::repeat("")))
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn row<'a>(
    rows: &'a [BTreeMap<String, String>],
    key: &str,
    value: &str,
) -> &'a BTreeMap<String, String> {
    rows.iter()
        .find(|r| r.get(key).map(String::as_str) == Some(value))
        .unwrap_or_else(|| panic!("no row with {key} = {value}: {rows:?}"))
}

fn num(r: &BTreeMap<String, String>, col: &str) -> i64 {
    r[col].parse().unwrap_or_else(|_| panic!("{col} of {r:?}"))
}

#[test]
fn msi_holds_the_agent_its_config_and_service() {
    let exe = windows_exe();
    if !exe.is_file() {
        return skip(
            TEST,
            &format!(
                "{} is missing (cross/build.sh x86_64-pc-windows-gnu)",
                exe.display()
            ),
        );
    }
    for tool in ["wixl", "msiinfo", "msiextract"] {
        if !have(tool) {
            return skip(
                TEST,
                &format!("{tool} is missing (apt-get install wixl msitools)"),
            );
        }
    }
    let dist = TempDir::new("windows-msi");
    let target = dist.path().join("x86_64-pc-windows-gnu");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(&exe, target.join("honeybee-agent.exe")).unwrap();
    let built = Command::new(root().join("packaging/windows/build-msi.sh"))
        .env("HONEYBEE_DIST_DIR", dist.path())
        .output()
        .expect("build-msi.sh runs");
    assert!(built.status.success(), "build-msi.sh: {built:?}");
    let msi = target.join(format!("honeybee-agent-{VERSION}.msi"));
    assert!(msi.is_file(), "{} not built", msi.display());

    // Files, byte for byte, in the folders they belong in.
    let extracted = dist.path().join("extracted");
    std::fs::create_dir_all(&extracted).unwrap();
    let out = Command::new("msiextract")
        .arg("-C")
        .arg(&extracted)
        .arg(&msi)
        .output()
        .expect("msiextract runs");
    assert!(out.status.success(), "msiextract: {out:?}");
    // msiextract names each file by its folder's own name, relative to -C
    // (both folders are "HoneyBee"); where they go is the Directory table's.
    let listed = String::from_utf8_lossy(&out.stdout);
    for name in ["HoneyBee/honeybee-agent.exe", "HoneyBee/agent.toml"] {
        assert!(listed.lines().any(|l| l == name), "{name} not in: {listed}");
    }
    let exe_in = extracted.join("HoneyBee/honeybee-agent.exe");
    let config_in = extracted.join("HoneyBee/agent.toml");
    assert_eq!(
        std::fs::read(&exe_in).unwrap(),
        std::fs::read(&exe).unwrap()
    );
    assert_eq!(
        std::fs::read(&config_in).unwrap(),
        std::fs::read(root().join("configs/agent-windows.toml")).unwrap()
    );

    let dirs = table(&msi, "Directory");
    assert_eq!(
        row(&dirs, "Directory", "INSTALLDIR")["Directory_Parent"],
        "ProgramFiles64Folder"
    );
    assert_eq!(
        row(&dirs, "Directory", "INSTALLDIR")["DefaultDir"],
        "HoneyBee"
    );
    assert_eq!(
        row(&dirs, "Directory", "DATADIR")["Directory_Parent"],
        "CommonAppDataFolder"
    );
    let files = table(&msi, "File");
    assert_eq!(
        row(&files, "FileName", "honeybee-agent.exe")["Component_"],
        "AgentExe"
    );
    assert_eq!(
        row(&files, "FileName", "agent.toml")["Component_"],
        "AgentConfig"
    );
    let components = table(&msi, "Component");
    assert_eq!(
        row(&components, "Component", "AgentExe")["Directory_"],
        "INSTALLDIR"
    );
    assert_eq!(
        row(&components, "Component", "AgentConfig")["Directory_"],
        "DATADIR"
    );
    // 256: a 64-bit component (its files go to the 64-bit Program Files).
    assert_eq!(
        num(row(&components, "Component", "AgentExe"), "Attributes") & 256,
        256
    );

    let services = table(&msi, "ServiceInstall");
    let svc = row(&services, "Name", "HoneyBeeAgent");
    assert_eq!(svc["Component_"], "AgentExe");
    assert_eq!(num(svc, "ServiceType"), 0x10, "SERVICE_WIN32_OWN_PROCESS");
    assert_eq!(num(svc, "StartType"), 2, "SERVICE_AUTO_START");
    assert_eq!(svc["StartName"], r"NT AUTHORITY\LocalService");
    assert_eq!(svc["Password"], "");
    assert_eq!(svc["Arguments"], "service run");
    let controls = table(&msi, "ServiceControl");
    let ctl = row(&controls, "Name", "HoneyBeeAgent");
    let event = num(ctl, "Event");
    // msidbServiceControlEvent: 0x2 stop on install, 0x20 stop on
    // uninstall, 0x80 delete on uninstall; never 0x1/0x10 (start): the
    // config must name the core first.
    assert_eq!(event & (0x2 | 0x20 | 0x80), 0x2 | 0x20 | 0x80, "{ctl:?}");
    assert_eq!(event & (0x1 | 0x10), 0, "{ctl:?}");

    let actions = table(&msi, "CustomAction");
    for (id, target, ignore_result) in [
        ("ServicePrepare", "service prepare", false),
        ("ServiceCleanup", "service cleanup", true),
    ] {
        let a = row(&actions, "Action", id);
        let ty = num(a, "Type");
        assert_eq!(a["Source"], "AgentExe", "{id} runs the installed exe");
        assert_eq!(a["Target"], target);
        assert_eq!(ty & 0x3f, 18, "{id}: an exe from the File table");
        assert_eq!(ty & 0x400, 0x400, "{id}: deferred");
        assert_eq!(ty & 0x800, 0x800, "{id}: not impersonated (runs as SYSTEM)");
        assert_eq!(ty & 0x40 != 0, ignore_result, "{id}: result checked or not");
    }
    let seq = table(&msi, "InstallExecuteSequence");
    let at = |a: &str| num(row(&seq, "Action", a), "Sequence");
    let (init, fin) = (at("InstallInitialize"), at("InstallFinalize"));
    for a in ["ServicePrepare", "ServiceCleanup"] {
        assert!(
            init < at(a) && at(a) < fin,
            "{a} outside the deferred script"
        );
    }
    assert!(
        at("InstallServices") < at("ServicePrepare") && at("ServicePrepare") < at("StartServices")
    );
    assert!(
        at("DeleteServices") < at("ServiceCleanup") && at("ServiceCleanup") < at("RemoveFiles")
    );
    assert_eq!(
        row(&seq, "Action", "ServicePrepare")["Condition"],
        "NOT REMOVE"
    );
    assert_eq!(
        row(&seq, "Action", "ServiceCleanup")["Condition"],
        "REMOVE=\"ALL\""
    );
}
