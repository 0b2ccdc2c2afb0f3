//! Devices of one vault (docs/FORMAT.md §18, issue 18.1). Each device has a
//! random ID kept in its own folder outside the vault, and a sealed record
//! in the shared `devices/` folder that only it writes: its name and
//! whether it has the vault mounted. What a killed daemon left half-written
//! is named by the device that left it, instead of a bare I/O error.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::crypto::{SubKeys, random};
use crate::format::devices;
pub use crate::format::devices::{Record, State, file_name as id_hex, short};
use crate::store::{Layout, atomic, safe};

/// One device as its record says.
#[derive(Debug, Clone)]
pub struct Device {
    /// The device ID.
    pub id: [u8; 16],
    /// Its record, or why it cannot be read.
    pub record: Result<Record, String>,
    /// Whether it is this device.
    pub me: bool,
}

/// This device and the shared device records.
pub struct Devices {
    dir: PathBuf,
    keys: Arc<SubKeys>,
    me: [u8; 16],
}

/// This device's ID for the vault: read from its folder, or made (random)
/// the first time.
pub fn this_device(layout: &Layout) -> io::Result<[u8; 16]> {
    let path = layout.device_id();
    match safe::read(&path, 64) {
        Ok(b) => b.as_slice().try_into().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a device ID (16 bytes)", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => new_device(layout, machine_tag().as_ref()),
        Err(e) => Err(e),
    }
}

/// A device folder brought from another machine (a home folder restored
/// onto a new computer) must not make two devices of one ID: they would
/// write one audit chain (§18). Called at every unlock: if this device's
/// folder says another machine made its ID, this one gets a new ID
/// (returns true); a folder from before the check learns its machine.
pub fn adopt_machine(layout: &Layout) -> io::Result<bool> {
    let Some(machine) = machine_tag() else {
        return Ok(false);
    };
    if safe::read(&layout.device_id(), 64).is_err() {
        return Ok(false); // made with its machine at first use
    }
    match safe::read(&layout.device_machine(), 64) {
        Ok(m) if m == machine => Ok(false),
        Ok(_) => {
            new_device(layout, Some(&machine))?;
            Ok(true)
        }
        Err(_) => {
            atomic::write(&layout.device_machine(), &machine)?;
            Ok(false)
        }
    }
}

fn new_device(layout: &Layout, machine: Option<&[u8; 32]>) -> io::Result<[u8; 16]> {
    let id = random::bytes::<16>();
    layout.ensure_local()?;
    if let Some(m) = machine {
        atomic::write(&layout.device_machine(), m)?;
    }
    atomic::write(&layout.device_id(), &id)?;
    Ok(id)
}

/// SHA-256 of `"quire/v1/machine"` ‖ the machine ID (systemd's
/// `/etc/machine-id`), if there is one.
fn machine_tag() -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let id = std::fs::read("/etc/machine-id")
        .or_else(|_| std::fs::read("/var/lib/dbus/machine-id"))
        .ok()?;
    let id = id.trim_ascii();
    if id.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    h.update(b"quire/v1/machine");
    h.update(id);
    Some(h.finalize().into())
}

/// The machine's host name (the default device name).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "this computer".into())
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Devices {
    /// The devices of the vault laid out as `layout`, seen from this one.
    pub fn new(layout: &Layout, keys: Arc<SubKeys>) -> io::Result<Devices> {
        Ok(Devices {
            dir: layout.devices(),
            me: this_device(layout)?,
            keys,
        })
    }

    /// This device's ID.
    pub fn me(&self) -> [u8; 16] {
        self.me
    }

    fn path(&self, id: &[u8; 16]) -> PathBuf {
        self.dir.join(devices::file_name(id))
    }

    fn read(&self, id: &[u8; 16]) -> Result<Option<Record>, String> {
        match safe::read(&self.path(id), safe::MAX_RECORD) {
            Ok(b) => devices::open(&self.keys.device, id, &b)
                .map(Some)
                .map_err(|e| match e {
                    devices::RecordError::Auth => {
                        "its record failed authentication (tampered with)".to_string()
                    }
                    devices::RecordError::Unknown => {
                        "its record is of a newer Quire; update Quire here".to_string()
                    }
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// This device's name: its record's, else the host name.
    pub fn my_name(&self) -> String {
        match self.read(&self.me) {
            Ok(Some(r)) if !r.name.is_empty() => r.name,
            _ => devices::clean_name(&host_name()),
        }
    }

    fn write(&self, r: &Record) -> io::Result<()> {
        atomic::private_dir(&self.dir)?;
        atomic::write(
            &self.path(&self.me),
            &devices::seal(&self.keys.device, &self.me, r),
        )
    }

    /// Records that this device has the vault mounted read-write (from
    /// now), or that it sealed it.
    pub fn set_state(&self, state: State) -> io::Result<()> {
        self.write(&Record {
            state,
            since: now_ns(),
            name: self.my_name(),
        })
    }

    /// Renames this device (its record keeps its state).
    pub fn rename(&self, name: &str) -> io::Result<String> {
        let name = devices::clean_name(name);
        if name.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a device name needs at least one visible character",
            ));
        }
        let old = self.read(&self.me).ok().flatten();
        self.write(&Record {
            state: old.as_ref().map_or(State::Sealed, |r| r.state),
            since: old.as_ref().map_or_else(now_ns, |r| r.since),
            name: name.clone(),
        })?;
        Ok(name)
    }

    /// Every device with a record, this one first, then by name.
    pub fn list(&self) -> io::Result<Vec<Device>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for e in rd {
            let e = e?;
            let Some(id) = e.file_name().to_str().and_then(devices::parse_file_name) else {
                continue;
            };
            match self.read(&id) {
                Ok(None) => {}
                Ok(Some(r)) => out.push(Device {
                    id,
                    record: Ok(r),
                    me: id == self.me,
                }),
                Err(why) => out.push(Device {
                    id,
                    record: Err(why),
                    me: id == self.me,
                }),
            }
        }
        out.sort_by(|a, b| {
            b.me.cmp(&a.me).then_with(|| {
                let n = |d: &Device| d.record.as_ref().map(|r| r.name.clone()).ok();
                n(a).cmp(&n(b))
            })
        });
        Ok(out)
    }

    /// The other devices that have the vault mounted, or were killed while
    /// they had it (no seal since): what they were writing may be
    /// half-written here until they seal or roll back.
    pub fn others_unsealed(&self) -> Vec<Device> {
        self.list()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| !d.me && matches!(&d.record, Ok(r) if r.state == State::Mounted))
            .collect()
    }

    /// Why a file may not authenticate, if another device may be writing
    /// it or was killed writing it: for the log line and `quire check`.
    pub fn explain_unreadable(&self) -> Option<String> {
        let others = self.others_unsealed();
        if others.is_empty() {
            return None;
        }
        let names: Vec<String> = others
            .iter()
            .map(|d| {
                let r = d.record.as_ref().expect("filtered to Ok");
                format!(
                    "{} ({}, mounted since {})",
                    r.name,
                    devices::short(&d.id),
                    super::history::stamp(
                        std::time::UNIX_EPOCH
                            + std::time::Duration::from_nanos(r.since.max(0) as u64)
                    )
                )
            })
            .collect();
        Some(format!(
            "it may have been left half-written by another device that has the vault mounted or was stopped without sealing it: {}; mount and unmount the vault there (or wait for it to sync) to finish or roll back its change",
            names.join(", ")
        ))
    }
}
