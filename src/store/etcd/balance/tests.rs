use std::collections::{BTreeMap, HashSet};

use super::{Member, Moves, View, balance, fair_share};

fn projects(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("p{i:04}")).collect()
}

fn members(names: &[&str], settled: bool) -> Vec<Member> {
    names
        .iter()
        .map(|n| Member {
            name: n.to_string(),
            settled,
        })
        .collect()
}

/// Everyone's moves for one reading of the keys.
fn decide_all(
    projects: &[String],
    leaders: &BTreeMap<String, String>,
    members: &[Member],
) -> BTreeMap<String, Moves> {
    let none = HashSet::new();
    members
        .iter()
        .map(|m| {
            let held: Vec<String> = leaders
                .iter()
                .filter(|(_, l)| **l == m.name)
                .map(|(p, _)| p.clone())
                .collect();
            let view = View {
                me: &m.name,
                projects,
                leaders,
                members,
                held: &held,
                overdue: &none,
                joining: false,
            };
            (m.name.clone(), balance(&view))
        })
        .collect()
}

/// Applies everyone's moves (releases first, then takes; a contested take goes to the
/// first) and returns how many times each project changed leader.
fn apply(leaders: &mut BTreeMap<String, String>, moves: &BTreeMap<String, Moves>) -> usize {
    let mut changes = 0;
    for m in moves.values() {
        for p in &m.release {
            leaders.remove(p);
        }
    }
    for (name, m) in moves {
        for p in &m.take {
            if !leaders.contains_key(p) {
                leaders.insert(p.clone(), name.clone());
                changes += 1;
            }
        }
    }
    changes
}

fn counts(leaders: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for l in leaders.values() {
        *c.entry(l.clone()).or_default() += 1;
    }
    c
}

/// Rounds until nothing moves; returns the leader changes per project.
fn settle(
    projects: &[String],
    leaders: &mut BTreeMap<String, String>,
    members: &[Member],
) -> BTreeMap<String, usize> {
    let mut changed: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..10 {
        let before = leaders.clone();
        let moves = decide_all(projects, leaders, members);
        apply(leaders, &moves);
        // Released projects are taken in the next reading.
        let moves = decide_all(projects, leaders, members);
        apply(leaders, &moves);
        for (p, l) in leaders.iter() {
            if before.get(p) != Some(l) {
                *changed.entry(p.clone()).or_default() += 1;
            }
        }
        if *leaders == before {
            break;
        }
    }
    changed
}

#[test]
fn the_fair_share_is_the_ceiling() {
    assert_eq!(fair_share(1000, 3), 334);
    assert_eq!(fair_share(10, 3), 4);
    assert_eq!(fair_share(9, 3), 3);
    assert_eq!(fair_share(5, 0), 5);
}

#[test]
fn free_projects_are_dealt_out_so_that_every_replica_takes_its_share_and_no_two_the_same() {
    let projects = projects(10);
    let leaders = BTreeMap::new();
    let members = members(&["a", "b", "c"], true);
    let moves = decide_all(&projects, &leaders, &members);
    let mut taken: Vec<&String> = moves.values().flat_map(|m| &m.take).collect();
    let n = taken.len();
    taken.sort();
    taken.dedup();
    assert_eq!(n, 10, "every project is taken by exactly one replica");
    assert_eq!(taken.len(), 10);
    let sizes: Vec<usize> = moves.values().map(|m| m.take.len()).collect();
    assert_eq!(sizes, vec![4, 3, 3]);
}

#[test]
fn a_lone_replica_leads_everything() {
    let projects = projects(7);
    let leaders = BTreeMap::new();
    let moves = decide_all(&projects, &leaders, &members(&["a"], true));
    assert_eq!(moves["a"].take, projects);
}

#[test]
fn a_joining_replica_gets_its_share_once_settled_and_nothing_moves_twice() {
    let projects = projects(1000);
    let mut leaders: BTreeMap<String, String> =
        projects.iter().map(|p| (p.clone(), "a".into())).collect();
    // Just joined: a keeps everything for now.
    let mut joining = members(&["a"], true);
    joining.extend(members(&["b"], false));
    let moves = decide_all(&projects, &leaders, &joining);
    assert_eq!(moves["a"], Moves::default());
    assert_eq!(moves["b"], Moves::default());
    // Settled: half moves, each project at most once.
    let changed = settle(&projects, &mut leaders, &members(&["a", "b"], true));
    assert_eq!(
        counts(&leaders).values().copied().collect::<Vec<_>>(),
        [500, 500]
    );
    assert_eq!(changed.len(), 500);
    assert!(changed.values().all(|n| *n == 1), "a project moved twice");
    // Stable: another reading moves nothing.
    let moves = decide_all(&projects, &leaders, &members(&["a", "b"], true));
    assert!(moves.values().all(|m| *m == Moves::default()));
}

#[test]
fn the_projects_of_a_lost_replica_are_shared_by_the_others() {
    let projects = projects(999);
    let mut leaders = BTreeMap::new();
    settle(&projects, &mut leaders, &members(&["a", "b", "c"], true));
    assert_eq!(
        counts(&leaders).values().copied().collect::<Vec<_>>(),
        [333, 333, 333]
    );
    leaders.retain(|_, l| l != "c");
    let changed = settle(&projects, &mut leaders, &members(&["a", "b"], true));
    assert_eq!(changed.len(), 333, "only c's projects moved");
    let c = counts(&leaders);
    assert!(c.values().all(|n| *n <= fair_share(999, 2) + 1), "{c:?}");
    assert_eq!(leaders.len(), 999);
}

#[test]
fn in_a_surge_rolling_update_the_drained_replicas_projects_go_to_the_new_one_and_move_once() {
    let projects = projects(1000);
    let mut leaders = BTreeMap::new();
    settle(&projects, &mut leaders, &members(&["a", "b", "c"], true));
    let of_a: Vec<String> = leaders
        .iter()
        .filter(|(_, l)| *l == "a")
        .map(|(p, _)| p.clone())
        .collect();
    // d started (not settled yet), a drained: its keys are gone with its lease.
    leaders.retain(|_, l| l != "a");
    let mut now = members(&["b", "c"], true);
    now.extend(members(&["d"], false));
    let changed = settle(&projects, &mut leaders, &now);
    assert_eq!(changed.len(), of_a.len(), "only a's projects moved");
    // d takes them until it leads as many as b and c (who are one below their share).
    let to_d = of_a.iter().filter(|p| leaders[*p] == "d").count();
    assert!(to_d >= of_a.len() - 2, "{to_d} of {}", of_a.len());
    // Once d settles, nothing moves: the counts are already fair.
    let changed = settle(&projects, &mut leaders, &members(&["b", "c", "d"], true));
    assert!(changed.is_empty(), "{changed:?}");
}

#[test]
fn a_project_free_for_too_long_is_taken_whatever_the_counts() {
    let projects = projects(4);
    let mut leaders: BTreeMap<String, String> = BTreeMap::new();
    leaders.insert("p0000".into(), "a".into());
    leaders.insert("p0001".into(), "a".into());
    leaders.insert("p0002".into(), "b".into());
    // The free p0003 is b's to take (b leads fewer); a leaves it to b...
    let members = members(&["a", "b"], true);
    let held = vec!["p0000".to_string(), "p0001".to_string()];
    let none = HashSet::new();
    let view = View {
        me: "a",
        projects: &projects,
        leaders: &leaders,
        members: &members,
        held: &held,
        overdue: &none,
        joining: false,
    };
    assert!(balance(&view).take.is_empty());
    // ...until it has been free for too long (b may be stuck).
    let overdue: HashSet<String> = ["p0003".to_string()].into();
    let view = View {
        overdue: &overdue,
        ..view
    };
    assert_eq!(balance(&view).take, vec!["p0003".to_string()]);
}

#[test]
fn the_surplus_handed_over_is_the_longest_held() {
    let projects = projects(4);
    let leaders: BTreeMap<String, String> =
        projects.iter().map(|p| (p.clone(), "a".into())).collect();
    let members = members(&["a", "b"], true);
    let held = vec![
        "p0002".to_string(),
        "p0000".to_string(),
        "p0003".to_string(),
        "p0001".to_string(),
    ];
    let none = HashSet::new();
    let view = View {
        me: "a",
        projects: &projects,
        leaders: &leaders,
        members: &members,
        held: &held,
        overdue: &none,
        joining: false,
    };
    assert_eq!(
        balance(&view),
        Moves {
            take: vec![],
            release: vec!["p0002".to_string(), "p0000".to_string()],
        }
    );
}

#[test]
fn replicas_started_together_see_each_other_before_sharing_so_nothing_moves_twice() {
    let projects = projects(30);
    let none = HashSet::new();
    let empty = BTreeMap::new();
    // a reads first and sees only itself; b and c register a moment later.
    let alone = members(&["a"], false);
    let first = View {
        me: "a",
        projects: &projects,
        leaders: &empty,
        members: &alone,
        held: &[],
        overdue: &none,
        joining: true,
    };
    assert_eq!(
        balance(&first),
        Moves::default(),
        "a first reading takes nothing"
    );
    // Next reading: b and c appeared, so a waits again; b and c read for the first time.
    let all = members(&["a", "b", "c"], false);
    for me in ["a", "b", "c"] {
        let view = View {
            me,
            members: &all,
            joining: true,
            ..first
        };
        assert_eq!(
            balance(&view),
            Moves::default(),
            "{me} waits while members join"
        );
    }
    // The reading after that is steady: each takes its share, and nothing moves again.
    let moves = decide_all(&projects, &empty, &all);
    let mut leaders = empty.clone();
    let changes = apply(&mut leaders, &moves);
    assert_eq!(changes, 30);
    for name in ["a", "b", "c"] {
        assert_eq!(leaders.values().filter(|l| *l == name).count(), 10);
    }
    let settled = members(&["a", "b", "c"], true);
    let again = settle(&projects, &mut leaders, &settled);
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn a_joining_replica_still_takes_what_has_been_free_too_long() {
    let projects = projects(2);
    let empty = BTreeMap::new();
    let overdue: HashSet<String> = ["p0001".to_string()].into();
    let view = View {
        me: "a",
        projects: &projects,
        leaders: &empty,
        members: &members(&["a"], true),
        held: &[],
        overdue: &overdue,
        joining: true,
    };
    assert_eq!(balance(&view).take, vec!["p0001".to_string()]);
}
