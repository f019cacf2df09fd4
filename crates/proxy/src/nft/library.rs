//! [`NftLib`]: scripts applied through libnftables (the library behind the
//! `nft` binary, Debian's `libnftables1`), loaded at run time, with one
//! context kept open on a thread of its own.
//!
//! Why not the binary for every apply: besides its start-up, `nft` closes
//! its netlink socket on exit, and nf_tables waits for the previous
//! transaction's deferred release (an RCU grace period, ~20 ms here) when
//! a netlink socket that committed closes. A context kept open pays
//! neither: applying a one-endpoint change to a table of 1,000 Services
//! went from ~30 ms to 12-18 ms in `wharf bench proxy` (the first change
//! after the full load) and ~6 ms in a series of changes (most of what is
//! left is nft's fetch of the table's chains and sets).
//!
//! A script is still one `nft_run_cmd_from_filename` call (what `nft -f`
//! makes), which libnftables sends as one batch: one transaction, all or
//! nothing.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::fd::AsRawFd;
use std::sync::{mpsc, Mutex, OnceLock};

use super::{short_error, Error, Nft};

/// The library's file name (its soname).
const LIBRARY: &CStr = c"libnftables.so.1";

type Ctx = *mut c_void;

/// The few entry points used (`libnftables.h`).
struct Api {
    ctx_new: unsafe extern "C" fn(u32) -> Ctx,
    ctx_free: unsafe extern "C" fn(Ctx),
    buffer_output: unsafe extern "C" fn(Ctx) -> c_int,
    buffer_error: unsafe extern "C" fn(Ctx) -> c_int,
    get_output_buffer: unsafe extern "C" fn(Ctx) -> *const c_char,
    get_error_buffer: unsafe extern "C" fn(Ctx) -> *const c_char,
    run_cmd_from_filename: unsafe extern "C" fn(Ctx, *const c_char) -> c_int,
}

/// libnftables keeps some process-wide state (its GMP allocator, symbol
/// tables); contexts on different threads take turns.
static LIBRARY_LOCK: Mutex<()> = Mutex::new(());

fn api() -> Result<&'static Api, Error> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(load)
        .as_ref()
        .map_err(|e| Error::Library(e.clone()))
}

fn load() -> Result<Api, String> {
    // SAFETY: dlopen with a constant, NUL-terminated name; the handle is
    // never closed, so the symbols stay valid for the process's life.
    let handle = unsafe { libc::dlopen(LIBRARY.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns NULL or a C string owned by libc.
        let why = unsafe { text(libc::dlerror()) };
        return Err(format!("loading {}: {why}", LIBRARY.to_string_lossy()));
    }
    let sym = |name: &CStr| -> Result<*mut c_void, String> {
        // SAFETY: a valid handle and a NUL-terminated name.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if p.is_null() {
            Err(format!(
                "{} has no {}",
                LIBRARY.to_string_lossy(),
                name.to_string_lossy()
            ))
        } else {
            Ok(p)
        }
    };
    // SAFETY: each symbol is the libnftables function of that name, whose
    // C signature (libnftables.h, stable since its 0.9 ABI) the pointer
    // type spells out.
    unsafe {
        Ok(Api {
            ctx_new: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(u32) -> Ctx>(sym(
                c"nft_ctx_new",
            )?),
            ctx_free: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(Ctx)>(sym(
                c"nft_ctx_free",
            )?),
            buffer_output: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(Ctx) -> c_int>(
                sym(c"nft_ctx_buffer_output")?,
            ),
            buffer_error: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(Ctx) -> c_int>(
                sym(c"nft_ctx_buffer_error")?,
            ),
            get_output_buffer: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(Ctx) -> *const c_char,
            >(sym(c"nft_ctx_get_output_buffer")?),
            get_error_buffer: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(Ctx) -> *const c_char,
            >(sym(c"nft_ctx_get_error_buffer")?),
            run_cmd_from_filename: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(Ctx, *const c_char) -> c_int,
            >(sym(c"nft_run_cmd_from_filename")?),
        })
    }
}

/// One libnftables context (and so one netlink socket), used only on the
/// worker thread that made it.
struct Context {
    api: &'static Api,
    ctx: Ctx,
}

impl Context {
    fn new(api: &'static Api) -> Result<Context, Error> {
        let _turn = LIBRARY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: flags 0 (NFT_CTX_DEFAULT) opens the context's netlink
        // socket, in the calling thread's network namespace.
        let ctx = unsafe { (api.ctx_new)(0) };
        if ctx.is_null() {
            return Err(Error::Library("nft_ctx_new failed".into()));
        }
        // SAFETY: a live context. Output (nothing, for our scripts) and
        // errors go to buffers instead of this process's stdout/stderr.
        unsafe {
            (api.buffer_output)(ctx);
            (api.buffer_error)(ctx);
        }
        Ok(Context { api, ctx })
    }

    fn run(&mut self, script: &str) -> Result<(), Error> {
        // The script is read as a file (an anonymous one in memory), as
        // `nft -f` reads it: an error then names the line and shows it (a
        // buffer's errors show only its first line).
        let file = script_file(script)?;
        let path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .expect("no NUL in a path of digits");
        let _turn = LIBRARY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: a live context and a NUL-terminated path that outlives
        // the call.
        let rc = unsafe { (self.api.run_cmd_from_filename)(self.ctx, path.as_ptr()) };
        // Both buffers are read after every run, which also empties them
        // (libnftables rewinds a buffer when it is read).
        // SAFETY: a live context; each buffer is NULL or a C string valid
        // until the next call on this context (copied at once).
        let (_, err) = unsafe {
            (
                text((self.api.get_output_buffer)(self.ctx)),
                text((self.api.get_error_buffer)(self.ctx)),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::Rejected(short_error(&err)))
        }
    }
}

/// `script` in a memfd (closed on drop).
fn script_file(script: &str) -> Result<std::fs::File, Error> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: a constant, NUL-terminated name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"nft-script".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::Spawn(std::io::Error::last_os_error()));
    }
    // SAFETY: a new descriptor that nothing else owns.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    f.write_all(script.as_bytes())?;
    Ok(f)
}

/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: the caller's promise.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let _turn = LIBRARY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the context is live and used by no one else.
        unsafe { (self.api.ctx_free)(self.ctx) };
    }
}

type Job = (String, mpsc::Sender<Result<(), Error>>);

/// Applies scripts through libnftables on a worker thread that holds the
/// context, in the process's network namespace or in a named one (`ip
/// netns`, for tests and benchmarks). Dropping it ends the thread.
pub struct NftLib {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for NftLib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NftLib")
    }
}

impl NftLib {
    /// Loads the library (once per process) and opens a context. Fails if
    /// the library is missing or the namespace cannot be entered.
    pub fn new(netns: Option<&str>) -> Result<NftLib, Error> {
        let api = api()?;
        let netns = netns.map(str::to_string);
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::channel();
        std::thread::Builder::new()
            .name("nft".into())
            .spawn(move || {
                let opened = enter(netns.as_deref()).and_then(|()| Context::new(api));
                let mut ctx = match opened {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        Some(c)
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for (script, reply) in queue {
                    // A context dropped after a failure is made again
                    // here; if that fails, this script fails, not the
                    // thread.
                    let result =
                        ctx.take()
                            .map_or_else(|| Context::new(api), Ok)
                            .and_then(|mut c| {
                                let r = c.run(&script);
                                // After a failure, a fresh socket and cache for
                                // the next script, whatever state it left.
                                if r.is_ok() {
                                    ctx = Some(c);
                                }
                                r
                            });
                    let _ = reply.send(result);
                }
            })
            .map_err(Error::Spawn)?;
        ready
            .recv()
            .map_err(|_| Error::Library("the nft thread ended".into()))??;
        Ok(NftLib { jobs })
    }
}

impl Nft for NftLib {
    fn apply(&self, script: &str) -> Result<(), Error> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send((script.to_string(), reply))
            .map_err(|_| Error::Library("the nft thread ended".into()))?;
        answer
            .recv()
            .map_err(|_| Error::Library("the nft thread ended".into()))?
    }
}

/// Move the calling thread (only) into the network namespace `netns`, or
/// with None into the process's own (its main thread's: a thread that
/// made this one may have entered another).
fn enter(netns: Option<&str>) -> Result<(), Error> {
    let path = match netns {
        Some(ns) => format!("/run/netns/{ns}"),
        None => "/proc/self/ns/net".to_string(),
    };
    let f =
        std::fs::File::open(&path).map_err(|e| Error::Library(format!("opening {path}: {e}")))?;
    if let (Ok(target), Ok(here)) = (f.metadata(), std::fs::metadata("/proc/thread-self/ns/net")) {
        use std::os::unix::fs::MetadataExt;
        if (target.dev(), target.ino()) == (here.dev(), here.ino()) {
            // Already there (and setns would need CAP_SYS_ADMIN).
            return Ok(());
        }
    }
    // SAFETY: setns on an open namespace file; it changes this thread only.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::Library(format!(
            "entering {path}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}
