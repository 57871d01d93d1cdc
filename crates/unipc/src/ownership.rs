//! Whether an object a create found already there may be adopted.
//!
//! A create that is not exclusive opens the object under the name when one
//! exists. Adopting an object another user made first would hand that user
//! whatever is sent through it (a squatter creates `posix-mq:/jobs` with
//! mode 0o666 before the service starts, and then reads the service's
//! messages), so the rule every named facility applies is: an existing
//! object is adopted only when this user owns it (and, where the kernel
//! records one, created it) and its permission bits are exactly the ones
//! the create asked for. Anything else is [`Error::ForeignObject`], and
//! the object is left as it was found.
//!
//! The caller reads the owner and mode from the object it actually opened
//! (`fstat` on the descriptor, `IPC_STAT` on the identifier), never by a
//! second lookup of the name, which another process could have replaced in
//! between.

use crate::{Error, Result};

/// The owner and mode of an object a create found already there, read from
/// the object opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    /// The owner's user id (`st_uid`, `msg_perm.uid`).
    pub(crate) uid: u32,
    /// The creator's user id, where the kernel records one apart from the
    /// owner (`msg_perm.cuid` for System V objects).
    pub(crate) creator_uid: Option<u32>,
    /// The permission bits, set-id and sticky bits included (`& 0o7777`).
    pub(crate) mode: u32,
}

/// Refuses to adopt `found` unless `caller_uid` owns (and created) it and
/// its mode is exactly `asked_mode`.
///
/// # Errors
/// [`Error::ForeignObject`] naming the object, its owner, creator and mode,
/// and the mode asked.
pub(crate) fn check_adoptable(
    object: &str,
    found: Found,
    asked_mode: u32,
    caller_uid: u32,
) -> Result<()> {
    let ours = found.uid == caller_uid && found.creator_uid.map_or(true, |c| c == caller_uid);
    if ours && found.mode == asked_mode {
        return Ok(());
    }
    Err(Error::ForeignObject {
        object: object.into(),
        owner_uid: found.uid,
        owner_name: user_name(found.uid),
        creator_uid: found.creator_uid,
        mode: found.mode,
        expected_mode: asked_mode,
        caller_uid,
    })
}

/// The name `/etc/passwd` gives `uid`, when it lists it. Only the local
/// file is read (no NSS): the name is a courtesy in an error message.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_name(&passwd, uid)
}

fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(uid: u32, creator_uid: Option<u32>, mode: u32) -> Found {
        Found {
            uid,
            creator_uid,
            mode,
        }
    }

    #[test]
    fn only_own_objects_with_the_mode_asked_are_adopted() {
        assert!(check_adoptable("x", found(0, None, 0o600), 0o600, 0).is_ok());
        assert!(check_adoptable("x", found(0, Some(0), 0o640), 0o640, 0).is_ok());
        for (what, f) in [
            ("another owner", found(65534, None, 0o600)),
            ("another creator", found(0, Some(65534), 0o600)),
            ("another mode", found(0, None, 0o666)),
            ("a set-id bit", found(0, None, 0o4600)),
        ] {
            let err = check_adoptable("x", f, 0o600, 0).unwrap_err();
            assert!(matches!(err, Error::ForeignObject { .. }), "{what}: {err}");
        }
    }

    #[test]
    fn the_refusal_names_owner_modes_and_what_to_do() {
        let err = check_adoptable("posix-mq:/squat", found(65534, None, 0o666), 0o600, 0)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("posix-mq:/squat: create: "), "{err}");
        assert!(err.contains("uid 65534"), "{err}");
        assert!(err.contains("0o666") && err.contains("0o600"), "{err}");
        assert!(err.contains("remove it"), "{err}");
        assert!(err.contains("different name"), "{err}");
        let err = check_adoptable("sysv-mq:0x1", found(0, Some(1000), 0o600), 0o600, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("created by uid 1000"), "{err}");
    }

    #[test]
    fn passwd_names_are_looked_up_by_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/sbin/nologin\n";
        assert_eq!(passwd_name(passwd, 65534).as_deref(), Some("nobody"));
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 7), None);
        assert_eq!(passwd_name("garbage\n::\n", 0), None);
    }
}
