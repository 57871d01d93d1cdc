//! POSIX message queues: thin wrappers over nix's `mqueue` module, with libc
//! for the two calls nix lacks (`mq_timedsend`, and the raw `mq_notify`
//! system call), and rustix for the descriptor-level calls (the queue is a
//! descriptor on Linux).
//!
//! `mq_notify` is made as a raw system call, not through glibc: glibc turns
//! `SIGEV_THREAD` into its own helper thread, while the kernel's meaning of
//! `SIGEV_THREAD` (write a 32-byte cookie to a netlink socket) is what
//! [`notify_socket`] needs.
//!
//! # Safety
//!
//! Every unsafe block here hands the kernel, through libc, (a) a queue
//! descriptor owned by a live [`Mqd`] (or borrowed from one), (b) pointers to
//! buffers borrowed from the caller for exactly the length passed, and (c)
//! pointers to locals that outlive the call. The kernel reads or writes only
//! within those lengths and keeps no pointer after the call returns (it
//! copies the notification cookie during the call).
#![allow(unsafe_code)]

use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::proc::{self, Resource};
use nix::errno::Errno;
use nix::mqueue::{self, MQ_OFlag, MqAttr, MqdT};
use nix::sys::signal::{SigEvent, SigevNotify};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType};
use rustix::time::{ClockId, Timespec};

/// How a queue is opened, in the flags `mq_open` takes.
pub(crate) struct OpenFlags {
    /// `O_RDONLY`, `O_WRONLY` or `O_RDWR`.
    pub(crate) read: bool,
    pub(crate) write: bool,
    /// `O_CREAT`.
    pub(crate) create: bool,
    /// `O_EXCL`.
    pub(crate) exclusive: bool,
    /// `O_NONBLOCK`.
    pub(crate) nonblocking: bool,
}

impl OpenFlags {
    fn bits(&self) -> MQ_OFlag {
        let mut flags = match (self.read, self.write) {
            (true, true) => MQ_OFlag::O_RDWR,
            (false, true) => MQ_OFlag::O_WRONLY,
            _ => MQ_OFlag::O_RDONLY,
        };
        // The kernel sets close-on-exec on every queue descriptor anyway;
        // asking for it keeps the intent visible and survives other kernels.
        flags |= MQ_OFlag::O_CLOEXEC;
        if self.create {
            flags |= MQ_OFlag::O_CREAT;
        }
        if self.exclusive {
            flags |= MQ_OFlag::O_EXCL;
        }
        if self.nonblocking {
            flags |= MQ_OFlag::O_NONBLOCK;
        }
        flags
    }
}

/// An open queue descriptor; `mq_close` on drop.
///
/// nix's `MqdT` has no `Drop`, hence this wrapper.
#[derive(Debug)]
pub(crate) struct Mqd(ManuallyDrop<MqdT>);

impl Drop for Mqd {
    fn drop(&mut self) {
        // SAFETY: `ManuallyDrop::take` requires that the value is not used
        // again: this is `drop`, which runs once, and nothing reads `self.0`
        // after this line.
        let mqd = unsafe { ManuallyDrop::take(&mut self.0) };
        // Nothing can be done about a failed close here; on Linux close only
        // fails for a bad descriptor, which ownership rules out.
        let _ = mqueue::mq_close(mqd);
    }
}

impl AsFd for Mqd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// The attributes `mq_getattr` reports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attr {
    pub(crate) nonblocking: bool,
    pub(crate) max_messages: i64,
    pub(crate) message_size: i64,
    pub(crate) current: i64,
}

/// `mq_open(name, flags, mode, attr)`; `attr` is (max messages, message
/// size), or the kernel's defaults when `None`.
pub(crate) fn open(
    name: &str,
    flags: &OpenFlags,
    mode: u32,
    attr: Option<(i64, i64)>,
) -> io::Result<Mqd> {
    // mq_attr's members are C longs (32 bits on 32-bit targets): a value
    // wider than that saturates, which the kernel refuses as above every
    // limit, rather than wrapping to a small size it would accept.
    #[allow(clippy::unnecessary_fallible_conversions, clippy::useless_conversion)]
    let member =
        |n: i64| mqueue::mq_attr_member_t::try_from(n).unwrap_or(mqueue::mq_attr_member_t::MAX);
    let attr =
        attr.map(|(max_messages, size)| MqAttr::new(0, member(max_messages), member(size), 0));
    if flags.create && attr.is_none() {
        return create_with_default_sizes(name, flags, mode);
    }
    let mode = Mode::from_bits_truncate(mode as libc::mode_t);
    let mqd = mqueue::mq_open(name, flags.bits(), mode, attr.as_ref())?;
    Ok(Mqd(ManuallyDrop::new(mqd)))
}

/// `mq_open(name, O_CREAT | flags, mode, NULL)`: the kernel's default sizes.
///
/// Not through nix: given no attributes, nix's `mq_open` calls the variadic
/// C function with neither a mode nor an attribute pointer, and with
/// `O_CREAT` the C library then reads both from whatever the registers
/// hold (seen here as EINVAL, from a stray attribute pointer).
fn create_with_default_sizes(name: &str, flags: &OpenFlags, mode: u32) -> io::Result<Mqd> {
    let name =
        std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call;
    // with O_CREAT mq_open reads exactly two variadic arguments, a mode_t
    // (passed promoted, as an unsigned int) and a `struct mq_attr *`, for
    // which null asks for the defaults; the kernel keeps no pointer.
    let fd = unsafe {
        libc::mq_open(
            name.as_ptr(),
            flags.bits().bits(),
            mode as libc::c_uint,
            std::ptr::null::<libc::mq_attr>(),
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: mq_open returned a new queue descriptor that nothing else
    // owns; on Linux an mqd_t is that file descriptor, which MqdT owns.
    let mqd = unsafe { <MqdT as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    Ok(Mqd(ManuallyDrop::new(mqd)))
}

/// `mq_unlink(name)`.
pub(crate) fn unlink(name: &str) -> io::Result<()> {
    Ok(mqueue::mq_unlink(name)?)
}

/// `mq_getattr`.
pub(crate) fn attributes(mqd: &Mqd) -> io::Result<Attr> {
    let attr = mqueue::mq_getattr(&mqd.0)?;
    Ok(Attr {
        nonblocking: attr.flags() & i64::from(libc::O_NONBLOCK) != 0,
        max_messages: attr.maxmsg(),
        message_size: attr.msgsize(),
        current: attr.curmsgs(),
    })
}

/// `mq_setattr` with only `O_NONBLOCK` changed (the only flag it sets).
pub(crate) fn set_nonblocking(mqd: &Mqd, nonblocking: bool) -> io::Result<()> {
    if nonblocking {
        mqueue::mq_set_nonblock(&mqd.0)?;
    } else {
        mqueue::mq_remove_nonblock(&mqd.0)?;
    }
    Ok(())
}

/// `fchmod` on the queue descriptor: sets the mode `mq_open` masked with
/// the umask.
pub(crate) fn set_mode(mqd: &Mqd, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(
        mqd,
        rustix::fs::Mode::from_raw_mode(mode as rustix::fs::RawMode),
    )?)
}

/// `fstat(...).st_mode & 0o7777`.
pub(crate) fn mode(mqd: &Mqd) -> io::Result<u32> {
    Ok(rustix::fs::fstat(mqd)?.st_mode & 0o7777)
}

/// `fstat` on the queue descriptor: (owner uid, `st_mode & 0o7777`) of the
/// queue this descriptor is open on, whatever the name means now.
pub(crate) fn owner_and_mode(mqd: &Mqd) -> io::Result<(u32, u32)> {
    let st = rustix::fs::fstat(mqd)?;
    Ok((st.st_uid, st.st_mode & 0o7777))
}

/// `fstat` on the queue descriptor: (device, inode), which tell one queue
/// from another queue created later under the same name.
pub(crate) fn identity(mqd: &Mqd) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(mqd)?;
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    Ok((st.st_dev as u64, st.st_ino as u64))
}

pub(crate) use super::proc::euid;

/// `mq_send`, or `mq_timedsend` when there is a deadline (absolute,
/// CLOCK_REALTIME).
pub(crate) fn send(
    mqd: &Mqd,
    message: &[u8],
    priority: u32,
    deadline: Option<Timespec>,
) -> io::Result<()> {
    let Some(deadline) = deadline else {
        return Ok(mqueue::mq_send(&mqd.0, message, priority)?);
    };
    let abs = libc::timespec {
        tv_sec: deadline.tv_sec as libc::time_t,
        tv_nsec: deadline.tv_nsec as _,
    };
    // SAFETY: mq_timedsend reads `message.len()` bytes from `message`, which
    // the caller borrows for the whole call; `abs` is a valid timespec on
    // this stack frame; `mqd` owns the descriptor for the call.
    let res = unsafe {
        libc::mq_timedsend(
            mqd.as_fd().as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            priority,
            &abs,
        )
    };
    Errno::result(res)?;
    Ok(())
}

/// `mq_receive`, or `mq_timedreceive` when there is a deadline (absolute,
/// CLOCK_REALTIME). Returns the length and the priority.
pub(crate) fn receive(
    mqd: &Mqd,
    buf: &mut [u8],
    deadline: Option<Timespec>,
) -> io::Result<(usize, u32)> {
    let mut priority = 0;
    let len = match deadline {
        None => mqueue::mq_receive(&mqd.0, buf, &mut priority)?,
        Some(deadline) => {
            let abs = TimeSpec::new(deadline.tv_sec, deadline.tv_nsec);
            mqueue::mq_timedreceive(&mqd.0, buf, &mut priority, &abs)?
        }
    };
    Ok((len, priority))
}

/// The current CLOCK_REALTIME time, which the timed calls' deadlines use.
pub(crate) fn realtime_now() -> Timespec {
    rustix::time::clock_gettime(ClockId::Realtime)
}

/// Length of the cookie the kernel writes to a notification socket
/// (NOTIFY_COOKIE_LEN in include/linux/mqueue.h).
pub(crate) const COOKIE_LEN: usize = 32;
/// Last cookie byte when a message arrived (NOTIFY_WOKENUP).
pub(crate) const NOTIFY_WOKENUP: u8 = 1;
/// Last cookie byte when the registration was removed (NOTIFY_REMOVED).
pub(crate) const NOTIFY_REMOVED: u8 = 2;

fn notify(mqd: &Mqd, event: Option<&libc::sigevent>) -> io::Result<()> {
    let event = event.map_or(std::ptr::null(), |e| e as *const libc::sigevent);
    // SAFETY: SYS_mq_notify takes a queue descriptor, owned by `mqd` for the
    // call, and a pointer to a sigevent that is either null (unregister) or
    // borrowed for the call; the kernel copies it (and, for SIGEV_THREAD,
    // the COOKIE_LEN bytes at sival_ptr) before returning.
    let res = unsafe { libc::syscall(libc::SYS_mq_notify, mqd.as_fd().as_raw_fd(), event) };
    Errno::result(res)?;
    Ok(())
}

/// `mq_notify` with SIGEV_SIGNAL: `signal` with `value` in `si_value`.
pub(crate) fn notify_signal(mqd: &Mqd, signal: i32, value: isize) -> io::Result<()> {
    let mut event = SigEvent::new(SigevNotify::SigevNone).sigevent();
    event.sigev_notify = libc::SIGEV_SIGNAL;
    event.sigev_signo = signal;
    event.sigev_value.sival_ptr = value as *mut libc::c_void;
    notify(mqd, Some(&event))
}

/// The highest signal number (SIGRTMAX), as the C library reserves them.
pub(crate) fn signal_max() -> i32 {
    libc::SIGRTMAX()
}

/// `mq_notify(NULL)`: removes this process's registration, if it has one.
pub(crate) fn notify_cancel(mqd: &Mqd) -> io::Result<()> {
    notify(mqd, None)
}

/// A socket the kernel can write notification cookies to: an unbound
/// NETLINK_ROUTE socket, as glibc uses. Nothing else is delivered to it:
/// it joins no multicast group and, unbound, has no address a process
/// could send to.
pub(crate) fn notification_socket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// `mq_notify` with the kernel's SIGEV_THREAD: when a message arrives in
/// the empty queue, or the registration is removed, the kernel writes
/// `cookie` to `socket` with its last byte set to [`NOTIFY_WOKENUP`] or
/// [`NOTIFY_REMOVED`].
pub(crate) fn notify_socket(
    mqd: &Mqd,
    socket: BorrowedFd<'_>,
    cookie: &[u8; COOKIE_LEN],
) -> io::Result<()> {
    let mut event = SigEvent::new(SigevNotify::SigevNone).sigevent();
    event.sigev_notify = libc::SIGEV_THREAD;
    event.sigev_signo = socket.as_raw_fd();
    // The kernel only reads through this pointer, during the call.
    event.sigev_value.sival_ptr = cookie.as_ptr().cast_mut().cast();
    notify(mqd, Some(&event))
}

/// Waits for one cookie on a notification socket. Returns how many bytes
/// arrived and the cookie.
pub(crate) fn recv_cookie(socket: BorrowedFd<'_>) -> io::Result<(usize, [u8; COOKIE_LEN])> {
    let mut cookie = [0; COOKIE_LEN];
    loop {
        match rustix::net::recv(socket, &mut cookie[..], RecvFlags::empty()) {
            Ok((len, _)) => return Ok((len, cookie)),
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

/// A number from `/proc/sys/fs/mqueue/<file>`, read now.
pub(crate) fn proc_limit(file: &str) -> Option<u64> {
    proc::read_sysctl(&format!("fs/mqueue/{file}"))
}

/// RLIMIT_MSGQUEUE: bytes all of this user's queues may take.
pub(crate) fn msgqueue_rlimit() -> Option<u64> {
    proc::soft_rlimit(Resource::Msgqueue)
}

/// Whether this process has as many descriptors open as RLIMIT_NOFILE
/// allows (then EMFILE means descriptors, not queue bytes).
pub(crate) fn at_descriptor_limit() -> bool {
    let Some(limit) = proc::soft_rlimit(Resource::Nofile) else {
        return false;
    };
    match proc::open_descriptors() {
        // The failed open's room may since have gone to the reader's own
        // directory handle: one short of the limit counts.
        Ok(open) => open >= limit.saturating_sub(1),
        Err(err) => err.raw_os_error() == Some(libc::EMFILE),
    }
}

/// Whether this process has CAP_SYS_RESOURCE in its effective set, which
/// lets it exceed msg_max, msgsize_max and queues_max.
pub(crate) fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    proc::has_effective_capability(CAP_SYS_RESOURCE)
}

/// Adopts a descriptor opened on a queue's inode in the mqueue filesystem
/// (`openat` in its directory): on Linux the same kind of descriptor
/// `mq_open` returns, which `mq_getattr` accepts. A descriptor on anything
/// else makes `mq_getattr` fail with EBADF, never misbehave.
pub(crate) fn from_owned(fd: OwnedFd) -> Mqd {
    use std::os::fd::IntoRawFd;
    // SAFETY: `into_raw_fd` gives up the descriptor's ownership, which
    // MqdT takes: nothing else will close it.
    let mqd = unsafe { <MqdT as std::os::fd::FromRawFd>::from_raw_fd(fd.into_raw_fd()) };
    Mqd(ManuallyDrop::new(mqd))
}

/// A directory descriptor on this IPC namespace's mqueue filesystem, and
/// where it is mounted: the first `mqueue` mount in `/proc/self/mountinfo`
/// or, when there is none, a detached mount made with `fsopen` and
/// `fsmount` (which needs CAP_SYS_ADMIN), which is attached nowhere,
/// changes no namespace and goes when the descriptor closes.
///
/// A mount inherited from another IPC namespace (a container that kept
/// the host's `/dev/mqueue` but has its own namespace) shows that
/// namespace's queues, as `ls /dev/mqueue` would.
pub(crate) fn mqueue_root() -> io::Result<(OwnedFd, Option<std::path::PathBuf>)> {
    use rustix::fs::{Mode as FsMode, OFlags};
    if let Some(point) = mqueue_mount_point() {
        let dir = rustix::fs::open(
            &point,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            FsMode::empty(),
        )?;
        return Ok((dir, Some(point)));
    }
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let context = rustix::mount::fsopen("mqueue", FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_create(&context)?;
    let mount = rustix::mount::fsmount(
        &context,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    Ok((mount, None))
}

/// The mount point of the first `mqueue` filesystem in this process's
/// mount namespace.
fn mqueue_mount_point() -> Option<std::path::PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        // id parent dev root MOUNT-POINT options [optional...] - TYPE source super
        let (before, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "mqueue" {
            return None;
        }
        Some(unescape_mount_field(before.split_whitespace().nth(4)?))
    })
}

/// A mountinfo field with its octal escapes (`\040` for a space) undone.
fn unescape_mount_field(field: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let text = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    std::path::PathBuf::from(std::ffi::OsString::from_vec(out))
}
