//! The drive format record (`<drive>/.tessera.sys/format.json`): which deployment a drive
//! belongs to, its own id, and its slot in the layout. Decides at start which drives to
//! trust, which fresh ones to format, and which to refuse (foreign deployment, wrong slot,
//! data without a format, duplicated identity). Pure decisions; the drive does the I/O.

use serde::{Deserialize, Serialize};

use crate::set::SetLayout;
use crate::StoreError;

/// Format records this code writes.
pub const FORMAT_VERSION: u32 = 1;

/// Identity and place of one drive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatRecord {
    pub version: u32,
    pub deployment_id: String,
    pub drive_id: String,
    pub set_index: usize,
    pub slot: usize,
    pub sets: usize,
    pub drives_per_set: usize,
}

/// What a drive looked like at start.
#[derive(Clone, Debug)]
pub enum Probe {
    /// It has a format record.
    Formatted(FormatRecord),
    /// No format record and nothing else in it (or it does not exist yet).
    Fresh,
    /// No format record, but it holds other files: never adopted silently.
    Unformatted,
    /// Not reachable / not readable.
    Offline(String),
}

/// What to do with a drive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Its record is trusted as is.
    Use(FormatRecord),
    /// Fresh: write this record first.
    Format(FormatRecord),
    /// Unreachable: run without it.
    Offline,
}

/// Decides for every drive (in endpoint order) given the layout. Errors name the drive.
pub fn decide(
    names: &[String],
    probes: &[Probe],
    layout: &SetLayout,
) -> Result<(String, Vec<Decision>), StoreError> {
    let refuse = |i: usize, reason: String| StoreError::DriveRefused {
        drive: names[i].clone(),
        reason,
    };
    // The deployment: the id most formatted drives carry.
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for p in probes {
        if let Probe::Formatted(f) = p {
            match counts.iter_mut().find(|(d, _)| *d == f.deployment_id) {
                Some((_, n)) => *n += 1,
                None => counts.push((&f.deployment_id, 1)),
            }
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let deployment = counts
        .first()
        .map(|(d, _)| d.to_string())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let mut seen_ids: Vec<&str> = Vec::new();
    let mut out = Vec::with_capacity(probes.len());
    for (i, p) in probes.iter().enumerate() {
        let (set_index, slot) = (i / layout.drives_per_set, i % layout.drives_per_set);
        match p {
            Probe::Formatted(f) => {
                if f.version != FORMAT_VERSION {
                    return Err(refuse(i, format!("unknown format version {}", f.version)));
                }
                if f.deployment_id != deployment {
                    return Err(refuse(
                        i,
                        format!(
                            "it belongs to deployment {}, the other drives to {deployment}",
                            f.deployment_id
                        ),
                    ));
                }
                if f.sets != layout.sets || f.drives_per_set != layout.drives_per_set {
                    return Err(refuse(
                        i,
                        format!(
                            "it was formatted for {} sets of {} drives, the endpoints give {} sets of {}",
                            f.sets, f.drives_per_set, layout.sets, layout.drives_per_set
                        ),
                    ));
                }
                if f.set_index != set_index || f.slot != slot {
                    return Err(refuse(
                        i,
                        format!(
                            "it holds slot {} of set {}, but is listed as slot {slot} of set {set_index}",
                            f.slot, f.set_index
                        ),
                    ));
                }
                if seen_ids.contains(&f.drive_id.as_str()) {
                    return Err(refuse(i, format!("drive id {} appears twice", f.drive_id)));
                }
                seen_ids.push(&f.drive_id);
                out.push(Decision::Use(f.clone()));
            }
            Probe::Fresh => out.push(Decision::Format(FormatRecord {
                version: FORMAT_VERSION,
                deployment_id: deployment.clone(),
                drive_id: uuid::Uuid::new_v4().to_string(),
                set_index,
                slot,
                sets: layout.sets,
                drives_per_set: layout.drives_per_set,
            })),
            Probe::Unformatted => {
                return Err(refuse(
                    i,
                    "it holds files but no format record; empty it or point at the right drive"
                        .into(),
                ))
            }
            Probe::Offline(_) => out.push(Decision::Offline),
        }
    }
    Ok((deployment, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("/d{i}")).collect()
    }

    fn fresh_deployment(n: usize) -> Vec<FormatRecord> {
        let layout = SetLayout::new(n, None).expect("valid layout");
        let (_, d) =
            decide(&names(n), &vec![Probe::Fresh; n], &layout).expect("fresh drives format");
        d.into_iter()
            .map(|d| match d {
                Decision::Format(f) => f,
                other => panic!("expected Format, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn fresh_drives_get_one_deployment_and_their_slots() {
        let f = fresh_deployment(4);
        assert!(f.iter().all(|r| r.deployment_id == f[0].deployment_id));
        assert_eq!(
            f.iter().map(|r| r.slot).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn a_replaced_drive_joins_the_deployment() {
        let f = fresh_deployment(4);
        let layout = SetLayout::new(4, None).expect("valid layout");
        let mut probes: Vec<Probe> = f.iter().cloned().map(Probe::Formatted).collect();
        probes[2] = Probe::Fresh;
        let (dep, d) = decide(&names(4), &probes, &layout).expect("accepted");
        assert_eq!(dep, f[0].deployment_id);
        assert!(matches!(&d[2], Decision::Format(r) if r.deployment_id == dep && r.slot == 2));
    }

    #[test]
    fn foreign_swapped_and_unformatted_drives_are_refused_by_name() {
        let f = fresh_deployment(4);
        let other = fresh_deployment(4);
        let layout = SetLayout::new(4, None).expect("valid layout");
        let mut probes: Vec<Probe> = f.iter().cloned().map(Probe::Formatted).collect();
        probes[1] = Probe::Formatted(other[1].clone());
        let err = decide(&names(4), &probes, &layout).expect_err("foreign drive");
        assert!(err.to_string().contains("/d1"), "{err}");

        let mut probes: Vec<Probe> = f.iter().cloned().map(Probe::Formatted).collect();
        probes.swap(0, 3);
        let err = decide(&names(4), &probes, &layout).expect_err("swapped drives");
        assert!(err.to_string().contains("/d0"), "{err}");

        let mut probes: Vec<Probe> = f.iter().cloned().map(Probe::Formatted).collect();
        probes[3] = Probe::Unformatted;
        let err = decide(&names(4), &probes, &layout).expect_err("unformatted drive");
        assert!(err.to_string().contains("/d3"), "{err}");
    }
}
