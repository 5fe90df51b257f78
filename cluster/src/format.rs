//! The drive format record (`<drive>/.tessera.sys/format.json`): which deployment a drive
//! belongs to, its own id, and its slot in the layout. Decides at start which drives to
//! trust, which fresh ones to format, and which to refuse (foreign deployment, wrong slot,
//! data without a format, duplicated identity), and — with drives on several nodes — when a
//! node may proceed ([`plan_startup`]). Pure decisions; the drive does the I/O. A blank
//! directory where a disk of its own was mounted is refused by [`mount`].

pub mod mount;

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

/// The next step of a node's startup, given what every drive looked like just now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Startup {
    /// Write these format records on this node's fresh drives (by global index), then look
    /// again: `reason` says what the node still waits for.
    Wait {
        reason: String,
        format_now: Vec<(usize, FormatRecord)>,
    },
    /// Open the store: one decision per drive. Decisions for other nodes' drives only
    /// validate them (`Format` there means "its node will format it").
    Open {
        deployment_id: String,
        decisions: Vec<Decision>,
    },
}

/// Decides a node's next startup step. `local[i]` says whether drive `i` is this node's;
/// a peer's drive probes `Fresh` when its node answers but has not formatted it yet, and
/// `Offline` when its node does not answer. `gave_up` is set once the startup wait is over.
///
/// The rules, so that every node agrees without talking to each other beyond probes:
/// - every node waits until each peer answers (or it gave up waiting);
/// - when no drive anywhere is formatted, only the node serving the FIRST endpoint creates
///   the deployment (formatting its own drives); the others wait for it;
/// - once a deployment exists, each node formats only its own fresh drives, with that
///   deployment's id and the slot its position in the list gives;
/// - a foreign, misplaced, mis-sized or unformatted-but-used drive is refused by name
///   ([`decide`]), whichever node serves it.
pub fn plan_startup(
    names: &[String],
    probes: &[Probe],
    local: &[bool],
    layout: &SetLayout,
    gave_up: bool,
) -> Result<Startup, StoreError> {
    let remote = |i: usize| !local.get(i).copied().unwrap_or(false);
    let list = |idx: Vec<usize>| {
        idx.iter()
            .map(|&i| names[i].as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let unanswered: Vec<usize> = (0..probes.len())
        .filter(|&i| remote(i) && matches!(probes[i], Probe::Offline(_)))
        .collect();
    let any_formatted = probes.iter().any(|p| matches!(p, Probe::Formatted(_)));
    if !any_formatted {
        if probes
            .iter()
            .enumerate()
            .any(|(i, p)| !remote(i) && matches!(p, Probe::Unformatted))
        {
            // `decide` refuses it by name.
            decide(names, probes, layout)?;
        }
        if remote(0) {
            let reason = format!(
                "waiting for the node serving {} to create the deployment",
                names[0]
            );
            if gave_up {
                return Err(StoreError::Config(format!(
                    "startup: gave up {reason}; no drive is formatted"
                )));
            }
            return Ok(Startup::Wait {
                reason,
                format_now: Vec::new(),
            });
        }
    }
    if !unanswered.is_empty() && !gave_up {
        return Ok(Startup::Wait {
            reason: format!(
                "waiting for {} to answer ({})",
                list(unanswered.clone()),
                unanswered
                    .iter()
                    .filter_map(|&i| match &probes[i] {
                        Probe::Offline(why) => Some(why.as_str()),
                        _ => None,
                    })
                    .next()
                    .unwrap_or_default()
            ),
            format_now: Vec::new(),
        });
    }
    let (deployment_id, decisions) = decide(names, probes, layout)?;
    let format_now: Vec<(usize, FormatRecord)> = decisions
        .iter()
        .enumerate()
        .filter_map(|(i, d)| match d {
            Decision::Format(f) if !remote(i) => Some((i, f.clone())),
            _ => None,
        })
        .collect();
    let peers_fresh: Vec<usize> = (0..decisions.len())
        .filter(|&i| remote(i) && matches!(decisions[i], Decision::Format(_)))
        .collect();
    if gave_up || (format_now.is_empty() && peers_fresh.is_empty()) {
        return Ok(Startup::Open {
            deployment_id,
            decisions,
        });
    }
    if !format_now.is_empty() {
        return Ok(Startup::Wait {
            reason: format!(
                "formatting {}",
                list(format_now.iter().map(|f| f.0).collect())
            ),
            format_now,
        });
    }
    Ok(Startup::Wait {
        reason: format!(
            "waiting for {} to be formatted by its node",
            list(peers_fresh)
        ),
        format_now: Vec::new(),
    })
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

    /// Plays the startup of all nodes at once, round by round, on shared drive state:
    /// `owner[i]` is the node serving drive `i`. Returns each node's deployment id.
    fn converge(owner: &[usize], nodes: usize, drives: &mut [Probe]) -> Vec<String> {
        let n = drives.len();
        let layout = SetLayout::new(n, None).expect("valid layout");
        let mut opened: Vec<Option<String>> = vec![None; nodes];
        for _round in 0..10 {
            for (node, slot) in opened.iter_mut().enumerate() {
                if slot.is_some() {
                    continue;
                }
                let local: Vec<bool> = owner.iter().map(|&o| o == node).collect();
                // A peer's unformatted drive looks fresh (its node answers, no record).
                let seen: Vec<Probe> = drives.to_vec();
                match plan_startup(&names(n), &seen, &local, &layout, false).expect("no refusal") {
                    Startup::Wait { format_now, .. } => {
                        for (i, f) in format_now {
                            assert!(local[i], "node {node} formats only its own drives");
                            drives[i] = Probe::Formatted(f);
                        }
                    }
                    Startup::Open { deployment_id, .. } => *slot = Some(deployment_id),
                }
            }
        }
        opened
            .into_iter()
            .map(|o| o.expect("every node opened"))
            .collect()
    }

    #[test]
    fn four_fresh_nodes_agree_on_one_deployment() {
        let owner = [0, 1, 2, 3, 0, 1, 2, 3];
        let mut drives = vec![Probe::Fresh; 8];
        let deps = converge(&owner, 4, &mut drives);
        assert!(deps.iter().all(|d| *d == deps[0]), "{deps:?}");
        for (i, p) in drives.iter().enumerate() {
            assert!(matches!(p, Probe::Formatted(f) if f.deployment_id == deps[0] && f.slot == i));
        }
    }

    #[test]
    fn only_the_first_endpoints_node_creates_the_deployment() {
        let layout = SetLayout::new(4, None).expect("valid layout");
        let fresh = vec![Probe::Fresh; 4];
        let not_first = [false, true, false, true];
        let step = plan_startup(&names(4), &fresh, &not_first, &layout, false).expect("waits");
        assert!(matches!(step, Startup::Wait { ref format_now, .. } if format_now.is_empty()));
        let err = plan_startup(&names(4), &fresh, &not_first, &layout, true).expect_err("gives up");
        assert!(err.to_string().contains("/d0"), "{err}");
        // The first node waits for silent peers before formatting anything.
        let mut probes = fresh.clone();
        probes[1] = Probe::Offline("connection refused".into());
        let first = [true, false, true, false];
        match plan_startup(&names(4), &probes, &first, &layout, false).expect("waits") {
            Startup::Wait { reason, format_now } => {
                assert!(format_now.is_empty());
                assert!(reason.contains("/d1"), "{reason}");
            }
            other => panic!("expected Wait, got {other:?}"),
        }
    }

    #[test]
    fn a_restarted_node_rejoins_and_a_foreign_one_is_refused() {
        let owner = [0, 1, 2, 3, 0, 1, 2, 3];
        let mut drives = vec![Probe::Fresh; 8];
        let deps = converge(&owner, 4, &mut drives);
        let layout = SetLayout::new(8, None).expect("valid layout");
        let local: Vec<bool> = owner.iter().map(|&o| o == 2).collect();
        // Node 2 restarts with its drives as they were: opens on the same deployment.
        match plan_startup(&names(8), &drives, &local, &layout, false).expect("rejoins") {
            Startup::Open {
                deployment_id,
                decisions,
            } => {
                assert_eq!(deployment_id, deps[0]);
                assert!(decisions.iter().all(|d| matches!(d, Decision::Use(_))));
            }
            other => panic!("expected Open, got {other:?}"),
        }
        // Node 2 restarts with drives of another deployment: refused, naming the drive.
        let other = fresh_deployment(8);
        drives[2] = Probe::Formatted(other[2].clone());
        drives[6] = Probe::Formatted(other[6].clone());
        let err = plan_startup(&names(8), &drives, &local, &layout, false).expect_err("foreign");
        assert!(
            matches!(err, StoreError::DriveRefused { ref drive, .. } if drive == "/d2"),
            "{err}"
        );
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
