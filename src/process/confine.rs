//! The child's half of strict isolation (§14): what a run's init and agent do to
//! themselves before the agent's `exec`.
//!
//! Everything here runs in a `CLONE_VM` child of the multi-threaded harness, so it makes
//! raw system calls only, on a [`Plan`] prepared (allocated, converted to C strings,
//! compiled to BPF) by [`crate::isolation`] before the clone. Each step returns the
//! `errno` of the call that failed, which the caller reports up its status pipe: a layer
//! that cannot be set up fails the start, it is never skipped.

use std::ffi::CString;

/// Fixed descriptor numbers in the child, after [`super::launch::STATUS_FD`].
pub const SOCKETS_FD: libc::c_int = 4;
/// The first Landlock ruleset; the others follow.
pub const LANDLOCK_FD: libc::c_int = 5;

/// What the agent's side of a strict run applies to itself, prepared by the harness.
#[derive(Default)]
pub struct Plan {
    /// The namespace tier's setup, done by the init (it runs in the new namespaces).
    pub namespace: Option<NamespacePlan>,
    /// How many Landlock rulesets sit at [`LANDLOCK_FD`] and after (layered, each
    /// restricting the rights it handles).
    pub landlock_rulesets: usize,
    /// The seccomp filter, installed last before the exec.
    pub seccomp: Option<Vec<libc::sock_filter>>,
}

// SAFETY: plain data (the BPF program holds no pointers).
unsafe impl Send for Plan {}
unsafe impl Sync for Plan {}

/// The network and mount namespaces of one run.
pub struct NamespacePlan {
    /// TCP ports to listen on at 127.0.0.1 (the endpoint's, 80, 443), in this order.
    pub tcp_ports: Vec<u16>,
    /// UDP ports bound at 127.0.0.1 (53, the resolver), after the TCP ones.
    pub udp_ports: Vec<u16>,
    /// Directories of the host hidden under a private tmpfs (`/run`, `/tmp`, …).
    pub covers: Vec<CString>,
    /// Paths of the host bound back over the tmpfs, each with the directories to make
    /// first (outermost first).
    pub keeps: Vec<(CString, Vec<CString>)>,
    /// Files mounted over others (`/etc/hosts`, `/etc/resolv.conf`): (source, target).
    pub files: Vec<(CString, CString)>,
}

fn errno() -> i32 {
    // SAFETY: reads this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// In the init, now in its new user, network, mount and PID namespaces: brings `lo` up,
/// makes the run's listeners and sends them to the harness over [`SOCKETS_FD`], hides the
/// host's sockets and directories of temporary files.
///
/// # Safety
/// Raw system calls only; `plan` stays alive (the harness's thread is suspended).
pub unsafe fn enter_namespaces(plan: &NamespacePlan) -> Result<(), i32> {
    loopback_up()?;
    send_listeners(plan)?;
    mounts(plan)
}

unsafe fn loopback_up() -> Result<(), i32> {
    let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if s < 0 {
        return Err(errno());
    }
    let mut req: libc::ifreq = std::mem::zeroed();
    for (i, b) in b"lo\0".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as i16;
    let rc = libc::ioctl(s, libc::SIOCSIFFLAGS, &req);
    let e = errno();
    libc::close(s);
    if rc != 0 {
        return Err(e);
    }
    Ok(())
}

unsafe fn bound(kind: libc::c_int, port: u16) -> Result<libc::c_int, i32> {
    let s = libc::socket(libc::AF_INET, kind | libc::SOCK_CLOEXEC, 0);
    if s < 0 {
        return Err(errno());
    }
    let one: libc::c_int = 1;
    libc::setsockopt(
        s,
        libc::SOL_SOCKET,
        libc::SO_REUSEADDR,
        (&one as *const libc::c_int).cast(),
        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    );
    let mut addr: libc::sockaddr_in = std::mem::zeroed();
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_port = port.to_be();
    addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
    let rc = libc::bind(
        s,
        (&addr as *const libc::sockaddr_in).cast(),
        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
    );
    if rc != 0 || (kind == libc::SOCK_STREAM && libc::listen(s, 1024) != 0) {
        let e = errno();
        libc::close(s);
        return Err(e);
    }
    Ok(s)
}

/// The most descriptors one message carries (endpoint, 80, 443, 53).
const MAX_SOCKETS: usize = 8;

unsafe fn send_listeners(plan: &NamespacePlan) -> Result<(), i32> {
    let mut fds = [-1 as libc::c_int; MAX_SOCKETS];
    let mut n = 0;
    let ports = plan
        .tcp_ports
        .iter()
        .map(|p| (libc::SOCK_STREAM, *p))
        .chain(plan.udp_ports.iter().map(|p| (libc::SOCK_DGRAM, *p)));
    for (kind, port) in ports {
        if n == MAX_SOCKETS {
            return Err(libc::E2BIG);
        }
        match bound(kind, port) {
            Ok(fd) => fds[n] = fd,
            Err(e) => {
                close_all(&fds[..n]);
                return Err(e);
            }
        }
        n += 1;
    }
    // One byte of data carries the descriptors as SCM_RIGHTS.
    let mut byte = [n as u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 16];
    let payload = (n * std::mem::size_of::<libc::c_int>()) as u32;
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = libc::CMSG_SPACE(payload) as usize;
    let cmsg = libc::CMSG_FIRSTHDR(&msg);
    (*cmsg).cmsg_level = libc::SOL_SOCKET;
    (*cmsg).cmsg_type = libc::SCM_RIGHTS;
    (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as usize;
    std::ptr::copy_nonoverlapping(
        fds.as_ptr().cast::<u8>(),
        libc::CMSG_DATA(cmsg),
        payload as usize,
    );
    let rc = libc::sendmsg(SOCKETS_FD, &msg, libc::MSG_NOSIGNAL);
    let e = errno();
    close_all(&fds[..n]);
    libc::close(SOCKETS_FD);
    if rc != 1 {
        return Err(e);
    }
    Ok(())
}

unsafe fn close_all(fds: &[libc::c_int]) {
    for fd in fds {
        libc::close(*fd);
    }
}

unsafe fn mounts(plan: &NamespacePlan) -> Result<(), i32> {
    let none = std::ptr::null::<libc::c_char>();
    // Nothing done here propagates back to the host's mounts.
    if libc::mount(
        none,
        c"/".as_ptr(),
        none,
        libc::MS_REC | libc::MS_PRIVATE,
        std::ptr::null(),
    ) != 0
    {
        return Err(errno());
    }
    // Copies of what stays visible, taken before the tmpfs hides it.
    const MAX_KEEPS: usize = 16;
    let mut kept = [-1 as libc::c_int; MAX_KEEPS];
    let mut files = [-1 as libc::c_int; MAX_KEEPS];
    if plan.keeps.len() > MAX_KEEPS || plan.files.len() > MAX_KEEPS {
        return Err(libc::E2BIG);
    }
    let clone_flags = (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint;
    for (i, (path, _)) in plan.keeps.iter().enumerate() {
        kept[i] = open_tree(path, clone_flags | libc::AT_RECURSIVE as libc::c_uint)?;
    }
    for (i, (src, _)) in plan.files.iter().enumerate() {
        files[i] = open_tree(src, clone_flags)?;
    }
    for dir in &plan.covers {
        if libc::mount(
            c"tmpfs".as_ptr(),
            dir.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=1777".as_ptr().cast(),
        ) != 0
        {
            return Err(errno());
        }
    }
    for (i, (path, parents)) in plan.keeps.iter().enumerate() {
        for dir in parents.iter().chain(std::iter::once(path)) {
            if libc::mkdir(dir.as_ptr(), 0o755) != 0 && errno() != libc::EEXIST {
                return Err(errno());
            }
        }
        move_mount(kept[i], path)?;
    }
    for (i, (_, target)) in plan.files.iter().enumerate() {
        move_mount(files[i], target)?;
    }
    Ok(())
}

unsafe fn open_tree(path: &CString, flags: libc::c_uint) -> Result<libc::c_int, i32> {
    let fd = libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags);
    if fd < 0 {
        return Err(errno());
    }
    Ok(fd as libc::c_int)
}

unsafe fn move_mount(fd: libc::c_int, target: &CString) -> Result<(), i32> {
    let rc = libc::syscall(
        libc::SYS_move_mount,
        fd,
        c"".as_ptr(),
        libc::AT_FDCWD,
        target.as_ptr(),
        libc::MOVE_MOUNT_F_EMPTY_PATH,
    );
    let e = errno();
    libc::close(fd);
    if rc != 0 {
        return Err(e);
    }
    Ok(())
}

/// In the agent's child just before its `exec`: no capability left (in the run's user
/// namespace the init had them all), no new privileges, the Landlock rulesets, then the
/// seccomp filter.
///
/// # Safety
/// Raw system calls only.
pub unsafe fn restrict(plan: &Plan, drop_caps: bool) -> Result<(), i32> {
    if drop_caps {
        drop_capabilities()?;
    }
    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
        return Err(errno());
    }
    for i in 0..plan.landlock_rulesets {
        let fd = LANDLOCK_FD + i as libc::c_int;
        if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0) != 0 {
            return Err(errno());
        }
    }
    if let Some(filter) = &plan.seccomp {
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        ) != 0
        {
            return Err(errno());
        }
    }
    Ok(())
}

/// Empties every capability set and locks root's special treatment off, so the `exec`
/// cannot give them back (uid 0 inside the namespace stays uid 0, without power).
unsafe fn drop_capabilities() -> Result<(), i32> {
    const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
    const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
    const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
    const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
    const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
    const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;
    let bits = SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_NO_SETUID_FIXUP
        | SECBIT_NO_SETUID_FIXUP_LOCKED
        | SECBIT_NO_CAP_AMBIENT_RAISE
        | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if libc::prctl(libc::PR_SET_SECUREBITS, bits, 0, 0, 0) != 0 {
        return Err(errno());
    }
    for cap in 0..64 {
        // EINVAL past the kernel's last capability.
        if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno() != libc::EINVAL {
            return Err(errno());
        }
    }
    libc::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL,
        0,
        0,
        0,
    );
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) != 0 {
        return Err(errno());
    }
    Ok(())
}
