//! The Service Control Manager, access lists and the firewall rule, with
//! windows-sys (already in the tree; the `windows-service` crate would add
//! a second windows-sys version for the same few calls).

use std::ffi::{c_void, OsStr};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    LocalFree, ERROR_CALL_NOT_IMPLEMENTED, ERROR_FAILED_SERVICE_CONTROLLER_CONNECT,
    ERROR_SERVICE_DOES_NOT_EXIST, ERROR_SERVICE_EXISTS, ERROR_SERVICE_NOT_ACTIVE,
    ERROR_SERVICE_SPECIFIC_ERROR, NO_ERROR,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SetNamedSecurityInfoW, SDDL_REVISION_1,
    SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    GetSecurityDescriptorDacl, ACL, DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR,
};
use windows_sys::Win32::System::Services::{
    ChangeServiceConfig2W, CloseServiceHandle, ControlService, CreateServiceW, DeleteService,
    OpenSCManagerW, OpenServiceW, QueryServiceStatus, RegisterServiceCtrlHandlerExW,
    SetServiceStatus, StartServiceCtrlDispatcherW, StartServiceW, SC_HANDLE, SC_MANAGER_CONNECT,
    SC_MANAGER_CREATE_SERVICE, SERVICE_ACCEPT_SHUTDOWN, SERVICE_ACCEPT_STOP, SERVICE_ALL_ACCESS,
    SERVICE_AUTO_START, SERVICE_CONFIG_DESCRIPTION, SERVICE_CONTROL_INTERROGATE,
    SERVICE_CONTROL_SHUTDOWN, SERVICE_CONTROL_STOP, SERVICE_DESCRIPTIONW, SERVICE_ERROR_NORMAL,
    SERVICE_QUERY_STATUS, SERVICE_RUNNING, SERVICE_START, SERVICE_START_PENDING, SERVICE_STATUS,
    SERVICE_STATUS_HANDLE, SERVICE_STOP, SERVICE_STOPPED, SERVICE_STOP_PENDING,
    SERVICE_TABLE_ENTRYW, SERVICE_WIN32_OWN_PROCESS,
};

use super::{Command, EXIT_CONFIG, FIREWALL_RULE, LOG_KEEP, LOG_MAX_BYTES, SERVICE_NAME};
use honeybee_process::logging::{self, LogFormat};

const DISPLAY_NAME: &str = "HoneyBee agent";
const DESCRIPTION: &str = "HoneyBee Extension-mode tripwires on the ports this workstation does \
                           not use; reports to the HoneyBee core.";
/// A built-in account with the rights of a plain user and no password to
/// keep; it needs nothing more (binding ports needs no privilege on
/// Windows).
const ACCOUNT: &str = r"NT AUTHORITY\LocalService";
/// SYSTEM and Administrators: everything; LocalService (LS): read. The
/// config and an enrollment token file kept here inherit it, so no other
/// user can read them. `P`: nothing inherited from `C:\ProgramData`, which
/// lets every user read.
const SDDL_DATA: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FR;;;LS)";
/// `state` and `logs`: the service account writes there too.
const SDDL_WRITABLE: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;LS)";
const WAIT: Duration = Duration::from_secs(30);

fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(std::iter::once(0)).collect()
}

fn data_dir() -> PathBuf {
    super::data_dir(std::env::var_os("ProgramData"))
}

/// `honeybee-agent service …`.
pub fn main(command: Command) -> ExitCode {
    let result = match command {
        Command::Run => return dispatch(),
        Command::Install => install(),
        Command::Uninstall => uninstall(),
        Command::Start => start(),
        Command::Stop => stop(),
        Command::Prepare => prepare(),
        Command::Cleanup => {
            firewall_remove();
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("honeybee-agent: service: {e}");
            ExitCode::from(1)
        }
    }
}

// --- SCM handles ------------------------------------------------------------

struct Handle(SC_HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: a handle OpenSCManagerW/OpenServiceW/CreateServiceW gave.
        unsafe { CloseServiceHandle(self.0) };
    }
}

fn os_error(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

fn manager(access: u32) -> Result<Handle, String> {
    // SAFETY: null machine and database names mean this machine's SCM.
    let h = unsafe { OpenSCManagerW(std::ptr::null(), std::ptr::null(), access) };
    if h.is_null() {
        return Err(os_error(
            "opening the Service Control Manager (run as Administrator)",
        ));
    }
    Ok(Handle(h))
}

fn open(access: u32) -> Result<(Handle, Handle), String> {
    let scm = manager(SC_MANAGER_CONNECT)?;
    let name = wide(SERVICE_NAME);
    // SAFETY: a live manager handle and a NUL-terminated name.
    let h = unsafe { OpenServiceW(scm.0, name.as_ptr(), access) };
    if h.is_null() {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ERROR_SERVICE_DOES_NOT_EXIST as i32) {
            return Err(format!("{SERVICE_NAME} is not installed"));
        }
        return Err(format!("opening {SERVICE_NAME}: {e}"));
    }
    Ok((scm, Handle(h)))
}

fn query(service: &Handle) -> Result<SERVICE_STATUS, String> {
    let mut st: SERVICE_STATUS = unsafe { std::mem::zeroed() };
    // SAFETY: a live service handle and a status to fill.
    if unsafe { QueryServiceStatus(service.0, &mut st) } == 0 {
        return Err(os_error("querying the service"));
    }
    Ok(st)
}

/// Polls until the service leaves `pending`, at most [`WAIT`].
fn wait_while(service: &Handle, pending: u32) -> Result<SERVICE_STATUS, String> {
    let until = Instant::now() + WAIT;
    loop {
        let st = query(service)?;
        if st.dwCurrentState != pending || Instant::now() >= until {
            return Ok(st);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn describe_stop(st: &SERVICE_STATUS) -> String {
    if st.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR {
        format!(
            "it stopped with service-specific exit code {} (see {})",
            st.dwServiceSpecificExitCode,
            data_dir().join(r"logs\agent.log").display()
        )
    } else {
        format!(
            "it stopped: {}",
            io::Error::from_raw_os_error(st.dwWin32ExitCode as i32)
        )
    }
}

// --- install, uninstall, start, stop ----------------------------------------

fn install() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    prepare()?;
    let scm = manager(SC_MANAGER_CREATE_SERVICE)?;
    let command = wide(format!("\"{}\" service run", exe.display()));
    let (name, display, account) = (wide(SERVICE_NAME), wide(DISPLAY_NAME), wide(ACCOUNT));
    // SAFETY: every string is NUL-terminated and outlives the call; a null
    // password is what the LocalService account takes.
    let h = unsafe {
        CreateServiceW(
            scm.0,
            name.as_ptr(),
            display.as_ptr(),
            SERVICE_ALL_ACCESS,
            SERVICE_WIN32_OWN_PROCESS,
            SERVICE_AUTO_START,
            SERVICE_ERROR_NORMAL,
            command.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null(),
            account.as_ptr(),
            std::ptr::null(),
        )
    };
    if h.is_null() {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ERROR_SERVICE_EXISTS as i32) {
            return Err(format!(
                "{SERVICE_NAME} is already installed (service uninstall first)"
            ));
        }
        return Err(format!("creating {SERVICE_NAME}: {e}"));
    }
    let service = Handle(h);
    let mut text = wide(DESCRIPTION);
    let desc = SERVICE_DESCRIPTIONW {
        lpDescription: text.as_mut_ptr(),
    };
    // SAFETY: a live handle and a description whose text outlives the call.
    // A missing description is cosmetic: not an error.
    unsafe {
        ChangeServiceConfig2W(
            service.0,
            SERVICE_CONFIG_DESCRIPTION,
            &desc as *const SERVICE_DESCRIPTIONW as *const c_void,
        )
    };
    println!(
        "installed {SERVICE_NAME} ({exe} service run, as {ACCOUNT}, automatic start); config: {}; \
         start it with: honeybee-agent service start",
        data_dir().join("agent.toml").display(),
        exe = exe.display()
    );
    Ok(())
}

fn uninstall() -> Result<(), String> {
    let (_scm, service) = open(
        SERVICE_STOP | SERVICE_QUERY_STATUS | 0x10000, /* DELETE */
    )?;
    let mut st: SERVICE_STATUS = unsafe { std::mem::zeroed() };
    // SAFETY: a live handle; not running is fine.
    if unsafe { ControlService(service.0, SERVICE_CONTROL_STOP, &mut st) } != 0 {
        wait_while(&service, SERVICE_STOP_PENDING)?;
    } else {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(ERROR_SERVICE_NOT_ACTIVE as i32) {
            eprintln!("honeybee-agent: service: stopping {SERVICE_NAME}: {e}");
        }
    }
    // SAFETY: a live handle opened with DELETE.
    if unsafe { DeleteService(service.0) } == 0 {
        return Err(os_error("deleting the service"));
    }
    firewall_remove();
    println!(
        "uninstalled {SERVICE_NAME}; {} (config, state, logs) is kept",
        data_dir().display()
    );
    Ok(())
}

fn start() -> Result<(), String> {
    let (_scm, service) = open(SERVICE_START | SERVICE_QUERY_STATUS)?;
    // SAFETY: a live handle; no arguments.
    if unsafe { StartServiceW(service.0, 0, std::ptr::null()) } == 0 {
        return Err(os_error("starting the service"));
    }
    let st = wait_while(&service, SERVICE_START_PENDING)?;
    match st.dwCurrentState {
        SERVICE_RUNNING => {
            println!("{SERVICE_NAME} is running");
            Ok(())
        }
        SERVICE_STOPPED => Err(describe_stop(&st)),
        s => Err(format!("still starting after {WAIT:?} (state {s})")),
    }
}

fn stop() -> Result<(), String> {
    let (_scm, service) = open(SERVICE_STOP | SERVICE_QUERY_STATUS)?;
    let mut st: SERVICE_STATUS = unsafe { std::mem::zeroed() };
    // SAFETY: a live handle and a status to fill.
    if unsafe { ControlService(service.0, SERVICE_CONTROL_STOP, &mut st) } == 0 {
        return Err(os_error("stopping the service"));
    }
    let st = wait_while(&service, SERVICE_STOP_PENDING)?;
    if st.dwCurrentState != SERVICE_STOPPED {
        return Err(format!("still stopping after {WAIT:?}"));
    }
    println!("{SERVICE_NAME} stopped");
    Ok(())
}

// --- ProgramData and its access lists ---------------------------------------

fn prepare() -> Result<(), String> {
    let base = data_dir();
    for dir in [base.clone(), base.join("state"), base.join("logs")] {
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    // The base first: its list reaches what is already inside (a config the
    // MSI copied); then the two writable folders get their own.
    restrict(&base, SDDL_DATA)?;
    restrict(&base.join("state"), SDDL_WRITABLE)?;
    restrict(&base.join("logs"), SDDL_WRITABLE)?;
    firewall_add()?;
    println!(
        "{}: SYSTEM and Administrators only, {ACCOUNT} reads (writes state and logs); \
         firewall rule \"{FIREWALL_RULE}\" allows the agent in",
        base.display()
    );
    Ok(())
}

/// Replaces the access list of `path` (and, through inheritance, of what
/// it holds) with the one of `sddl`, inheriting nothing from its parent.
fn restrict(path: &Path, sddl: &str) -> Result<(), String> {
    let text = wide(sddl);
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: a NUL-terminated string; the descriptor is LocalFree'd below.
    if unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            text.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            std::ptr::null_mut(),
        )
    } == 0
    {
        return Err(os_error("building an access list"));
    }
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = std::ptr::null_mut();
    // SAFETY: `sd` is the descriptor built above; `dacl` points into it.
    let ok = unsafe { GetSecurityDescriptorDacl(sd, &mut present, &mut dacl, &mut defaulted) };
    let result = if ok == 0 || present == 0 {
        Err(os_error("reading the access list"))
    } else {
        let name = wide(path);
        // SAFETY: a NUL-terminated path and the list inside `sd`, alive
        // until LocalFree.
        let e = unsafe {
            SetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                dacl,
                std::ptr::null(),
            )
        };
        if e == NO_ERROR {
            Ok(())
        } else {
            Err(format!(
                "setting the access list of {}: {}",
                path.display(),
                io::Error::from_raw_os_error(e as i32)
            ))
        }
    };
    // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
    unsafe { LocalFree(sd) };
    result
}

// --- Windows Firewall -------------------------------------------------------

fn netsh(args: &[String]) -> Result<(), String> {
    let out = std::process::Command::new("netsh")
        .args(args)
        .output()
        .map_err(|e| format!("running netsh: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "netsh {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// One inbound allow rule for this program (every port it binds), after
/// removing an older one of the same name so that repeats do not pile up.
fn firewall_add() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    firewall_remove();
    netsh(&[
        "advfirewall".into(),
        "firewall".into(),
        "add".into(),
        "rule".into(),
        format!("name={FIREWALL_RULE}"),
        "dir=in".into(),
        "action=allow".into(),
        format!("program={}", exe.display()),
        "enable=yes".into(),
    ])
}

fn firewall_remove() {
    // None to delete is the usual case on a first install.
    let _ = netsh(&[
        "advfirewall".into(),
        "firewall".into(),
        "delete".into(),
        "rule".into(),
        format!("name={FIREWALL_RULE}"),
    ]);
}

// --- under the SCM ----------------------------------------------------------

static STATUS: AtomicUsize = AtomicUsize::new(0);
static STOP: OnceLock<async_channel::Sender<()>> = OnceLock::new();
static STOP_ASKED: AtomicBool = AtomicBool::new(false);

fn report(state: u32, win32: u32, specific: u32) {
    let handle = STATUS.load(Ordering::SeqCst) as SERVICE_STATUS_HANDLE;
    if handle.is_null() {
        return;
    }
    let st = SERVICE_STATUS {
        dwServiceType: SERVICE_WIN32_OWN_PROCESS,
        dwCurrentState: state,
        dwControlsAccepted: if state == SERVICE_RUNNING {
            SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN
        } else {
            0
        },
        dwWin32ExitCode: win32,
        dwServiceSpecificExitCode: specific,
        dwCheckPoint: 0,
        dwWaitHint: if state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING {
            WAIT.as_millis() as u32
        } else {
            0
        },
    };
    // SAFETY: the handle RegisterServiceCtrlHandlerExW gave; never closed.
    unsafe { SetServiceStatus(handle, &st) };
}

/// `service run`: hands the thread to the SCM, which calls
/// [`service_main`] on another and returns once the service has stopped.
fn dispatch() -> ExitCode {
    let mut name = wide(SERVICE_NAME);
    let table = [
        SERVICE_TABLE_ENTRYW {
            lpServiceName: name.as_mut_ptr(),
            lpServiceProc: Some(service_main),
        },
        SERVICE_TABLE_ENTRYW {
            lpServiceName: std::ptr::null_mut(),
            lpServiceProc: None,
        },
    ];
    // SAFETY: a table ending in a null entry, alive until the call returns.
    if unsafe { StartServiceCtrlDispatcherW(table.as_ptr()) } == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT as i32) {
            eprintln!(
                "honeybee-agent: `service run` is for the Service Control Manager; in a console \
                 run: honeybee-agent extension --config FILE"
            );
        } else {
            eprintln!("honeybee-agent: service dispatcher: {e}");
        }
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

unsafe extern "system" fn control(
    control: u32,
    _event: u32,
    _data: *mut c_void,
    _context: *mut c_void,
) -> u32 {
    match control {
        SERVICE_CONTROL_STOP | SERVICE_CONTROL_SHUTDOWN => {
            report(SERVICE_STOP_PENDING, NO_ERROR, 0);
            STOP_ASKED.store(true, Ordering::SeqCst);
            if let Some(tx) = STOP.get() {
                log::info!("service: stop requested: stopping");
                let _ = tx.try_send(());
                tx.close();
            }
            NO_ERROR
        }
        SERVICE_CONTROL_INTERROGATE => NO_ERROR,
        _ => ERROR_CALL_NOT_IMPLEMENTED,
    }
}

unsafe extern "system" fn service_main(_argc: u32, _argv: *mut windows_sys::core::PWSTR) {
    let name = wide(SERVICE_NAME);
    // SAFETY: a NUL-terminated name and a handler that lives as long as
    // the process.
    let handle =
        unsafe { RegisterServiceCtrlHandlerExW(name.as_ptr(), Some(control), std::ptr::null()) };
    if handle.is_null() {
        return;
    }
    STATUS.store(handle as usize, Ordering::SeqCst);
    report(SERVICE_START_PENDING, NO_ERROR, 0);
    let (win32, specific) = run();
    report(SERVICE_STOPPED, win32, specific);
}

/// The agent, as `main` runs it in a console, with the log in its file and
/// the SCM's stop request as the stop signal. Returns the exit codes for
/// the SCM.
fn run() -> (u32, u32) {
    let base = data_dir();
    let config = super::load_config(&base);
    let format = config
        .as_ref()
        .map(|c| c.log_format)
        .unwrap_or(LogFormat::Text);
    let log_path = base.join("logs").join("agent.log");
    match super::RotatingFile::open(log_path.clone(), LOG_MAX_BYTES, LOG_KEEP) {
        Ok(file) => logging::init_to(format, Box::new(file)),
        // Nowhere to write: the exit code is all the SCM will show.
        Err(_) => return (ERROR_SERVICE_SPECIFIC_ERROR, EXIT_CONFIG),
    }
    log::info!(
        "service: honeybee-agent {} starting",
        env!("CARGO_PKG_VERSION")
    );
    let fail = |e: String, code: u32| {
        log::error!("service: {e}");
        (ERROR_SERVICE_SPECIFIC_ERROR, code)
    };
    let mut config = match config {
        Ok(c) => c,
        Err(e) => return fail(e, EXIT_CONFIG),
    };
    if let Err(e) = crate::state::check_state_dir(&config.state_dir) {
        return fail(e, EXIT_CONFIG);
    }
    match config.resolve_enrollment_token(std::env::var(crate::config::TOKEN_ENV).ok()) {
        Ok(warnings) => warnings.iter().for_each(|w| log::warn!("{w}")),
        Err(e) => return fail(e.to_string(), EXIT_CONFIG),
    }
    let (tx, rx) = async_channel::bounded(1);
    let _ = STOP.set(tx);
    if STOP_ASKED.load(Ordering::SeqCst) {
        log::info!("service: stopped before it started");
        return (NO_ERROR, 0);
    }
    report(SERVICE_RUNNING, NO_ERROR, 0);
    match crate::agent::run(config, rx) {
        Ok(()) => {
            log::info!("service: stopped");
            (NO_ERROR, 0)
        }
        Err(e) => fail(e.to_string(), u32::from(e.exit_code())),
    }
}
