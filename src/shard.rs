//! One of N interleaved slices of an input, so N processes over the same file share the work
//! without talking to each other: shard I of N holds the data rows whose 0-based index is
//! I modulo N. Every row is in exactly one shard, and each shard keeps input order.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// The `absent` shards of `count` that `held` lacks, for a message: the first ten named by
/// `name` and the rest counted ("1/9, 2/9, and 4 more"), so a run claiming millions of shards
/// costs nothing to answer.
pub fn name_missing(
    count: u64,
    absent: u64,
    held: impl Fn(u64) -> bool,
    name: impl Fn(u64) -> String,
) -> String {
    let mut named: Vec<String> = (0..count)
        .filter(|&i| !held(i))
        .take(10)
        .map(name)
        .collect();
    if absent > 10 {
        named.push(format!("and {} more", absent - 10));
    }
    named.join(", ")
}

/// Where a scheduler puts the task's index (and Slurm the array's size and first index).
const SLURM_ID: &str = "SLURM_ARRAY_TASK_ID";
const SLURM_MIN: &str = "SLURM_ARRAY_TASK_MIN";
const SLURM_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
const SLURM_STEP: &str = "SLURM_ARRAY_TASK_STEP";
const KUBERNETES_INDEX: &str = "JOB_COMPLETION_INDEX";

impl Shard {
    /// The whole input.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether the data row with 0-based index `row` belongs to this shard.
    pub fn holds(self, row: u64) -> bool {
        row % self.count == self.index
    }

    /// How many of an input's `total` data rows this shard holds.
    pub fn rows_of(self, total: u64) -> u64 {
        total / self.count + u64::from(self.index < total % self.count)
    }

    /// Reads `--shard`: `I/N`, `auto/N` or `auto`. `auto` takes the index from the
    /// scheduler's environment, read through `env`: a Slurm job array's task id (less the
    /// array's first id, so `--array=1-4` works too), or a Kubernetes Indexed Job's completion
    /// index; plain `auto` takes N from the Slurm array's task count.
    pub fn parse(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let Some((index, count)) = spec
            .split_once('/')
            .or((spec == "auto").then_some((spec, "")))
        else {
            return Err(usage(spec, "it has no /"));
        };
        let count = match count {
            "" if index == "auto" => slurm_count(&env)?,
            n => number(n, "N", spec)?,
        };
        if count == 0 {
            return Err(usage(spec, "N must be at least 1"));
        }
        let index = match index {
            "auto" => {
                check_slurm_count(&env, spec, count)?;
                scheduler_index(&env, spec)?
            }
            i => number(i, "I", spec)?,
        };
        if index >= count {
            return Err(usage(
                spec,
                &match count {
                    1 => format!("shard index {index} is out of range for 1 shard (only 0)"),
                    _ => format!(
                        "shard index {index} is out of range for {count} shards (0 to {})",
                        count - 1
                    ),
                },
            ));
        }
        Ok(Shard { index, count })
    }
}

/// `auto/N` in a Slurm array of another size: the tasks past N would fail only when they start,
/// and with fewer tasks than N a shard would never run.
fn check_slurm_count(env: &impl Fn(&str) -> Option<String>, spec: &str, count: u64) -> Result<()> {
    let Some(tasks) = env(SLURM_COUNT).filter(|_| env(SLURM_ID).is_some()) else {
        return Ok(());
    };
    match number(&tasks, SLURM_COUNT, spec)? {
        n if n == count => Ok(()),
        n => Err(usage(
            spec,
            &format!("the Slurm array has {n} tasks ({SLURM_COUNT}), not {count}; give plain auto"),
        )),
    }
}

fn scheduler_index(env: &impl Fn(&str) -> Option<String>, spec: &str) -> Result<u64> {
    if env(SLURM_ID).is_some() && env(KUBERNETES_INDEX).is_some() {
        return Err(usage(
            spec,
            &format!(
                "both {SLURM_ID} and {KUBERNETES_INDEX} are set, so the scheduler is unclear; \
                 unset the one that does not belong to this job, or give the index as I/N"
            ),
        ));
    }
    if let Some(id) = env(SLURM_ID) {
        let first = match env(SLURM_MIN) {
            Some(min) => number(&min, SLURM_MIN, spec)?,
            None => 0,
        };
        let id = number(&id, SLURM_ID, spec)?;
        // `--array=0-6:2` runs tasks 0, 2, 4 and 6: shards 0 to 3.
        let step = match env(SLURM_STEP) {
            Some(step) => number(&step, SLURM_STEP, spec)?.max(1),
            None => 1,
        };
        let offset = id.checked_sub(first).ok_or_else(|| {
            usage(
                spec,
                &format!("{SLURM_ID} {id} is below {SLURM_MIN} {first}"),
            )
        })?;
        if offset % step != 0 {
            return Err(usage(
                spec,
                &format!(
                    "{SLURM_ID} {id} is not on the array's steps of {step} from {first}; auto \
                     reads arrays of evenly spaced ids (0-3, 1-4, 0-6:2), not lists"
                ),
            ));
        }
        return Ok(offset / step);
    }
    if let Some(index) = env(KUBERNETES_INDEX) {
        return number(&index, KUBERNETES_INDEX, spec);
    }
    Err(usage(
        spec,
        &format!(
            "auto reads the shard index from {SLURM_ID} (a Slurm job array) or \
             {KUBERNETES_INDEX} (a Kubernetes Indexed Job), and neither is set; give it as I/N"
        ),
    ))
}

fn slurm_count(env: &impl Fn(&str) -> Option<String>) -> Result<u64> {
    match env(SLURM_COUNT) {
        Some(n) => number(&n, SLURM_COUNT, "auto"),
        None => Err(usage(
            "auto",
            &format!(
                "plain auto takes the number of shards from {SLURM_COUNT}, which is not set; \
                 give it as auto/N (a Kubernetes Indexed Job needs N = its completions)"
            ),
        )),
    }
}

/// Digits only: Rust's parser also takes a leading `+`, which would let `+0/2` and `0/2` name
/// one shard in two spellings.
fn number(text: &str, what: &str, spec: &str) -> Result<u64> {
    let text = text.trim();
    let problem = match text.parse() {
        _ if text.is_empty() => format!("{what} is missing"),
        _ if !text.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{what} must be a whole number, not '{text}'")
        }
        Ok(n) => return Ok(n),
        Err(_) => format!(
            "{what} is {text}, more than failup can count ({})",
            u64::MAX
        ),
    };
    Err(usage(spec, &problem))
}

fn usage(spec: &str, problem: &str) -> Error {
    Error::Usage(format!(
        "--shard {spec}: {problem} (the forms are I/N, auto/N and auto; I counts from 0)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_shard_counts_the_rows_it_holds() {
        for count in [1, 2, 3, 7] {
            for total in 0..30 {
                for index in 0..count {
                    let shard = Shard { index, count };
                    let held = (0..total).filter(|&row| shard.holds(row)).count() as u64;
                    assert_eq!(shard.rows_of(total), held, "{index}/{count} of {total}");
                }
            }
        }
    }

    #[test]
    fn every_row_is_in_exactly_one_shard() {
        for count in [1, 2, 3, 7] {
            for row in 0..50 {
                let holders = (0..count)
                    .filter(|&index| Shard { index, count }.holds(row))
                    .count();
                assert_eq!(holders, 1, "row {row} of {count} shards");
            }
        }
    }

    #[test]
    fn explicit_and_scheduler_indices() {
        assert_eq!(
            Shard::parse("2/7", env(&[])).unwrap(),
            Shard { index: 2, count: 7 }
        );
        let slurm = [(SLURM_ID, "3"), (SLURM_COUNT, "4")];
        assert_eq!(
            Shard::parse("auto", env(&slurm)).unwrap(),
            Shard { index: 3, count: 4 }
        );
        assert_eq!(
            Shard::parse("auto/4", env(&slurm)).unwrap(),
            Shard { index: 3, count: 4 }
        );
        let from_one = [(SLURM_ID, "4"), (SLURM_MIN, "1"), (SLURM_COUNT, "4")];
        assert_eq!(
            Shard::parse("auto", env(&from_one)).unwrap(),
            Shard { index: 3, count: 4 }
        );
        // `--array=0-6:2`: tasks 0, 2, 4, 6 are shards 0 to 3 of 4.
        for (id, index) in [("0", 0), ("2", 1), ("6", 3)] {
            let stepped = [(SLURM_ID, id), (SLURM_MIN, "0"), (SLURM_COUNT, "4")];
            let stepped = [&stepped[..], &[(SLURM_STEP, "2")]].concat();
            assert_eq!(
                Shard::parse("auto", env(&stepped)).unwrap(),
                Shard { index, count: 4 }
            );
        }
        let k8s = [(KUBERNETES_INDEX, "5")];
        assert_eq!(
            Shard::parse("auto/6", env(&k8s)).unwrap(),
            Shard { index: 5, count: 6 }
        );
    }

    #[test]
    fn an_index_past_the_shards_is_refused_naming_the_range() {
        let said = |spec: &str| Shard::parse(spec, env(&[])).unwrap_err().to_string();
        assert!(said("3/3").contains("out of range for 3 shards (0 to 2)"));
        assert!(said("1/1").contains("out of range for 1 shard (only 0)"));
        // Each part of a spec that is not a number says which and why.
        assert!(said("abc").contains("--shard abc: it has no /"));
        assert!(said("1/").contains("N is missing"));
        assert!(said("/2").contains("I is missing"));
        assert!(said("x/2").contains("I must be a whole number, not 'x'"));
        let e = said("0/99999999999999999999");
        assert!(
            e.contains("N is 99999999999999999999, more than failup can count"),
            "{e}"
        );
    }

    /// Two schedulers' variables, or an `auto/N` that disagrees with the Slurm array's size,
    /// are refused: one index was picked silently, and the other tasks failed only later.
    #[test]
    fn a_scheduler_environment_that_disagrees_is_refused() {
        let both = [(SLURM_ID, "0"), (KUBERNETES_INDEX, "1")];
        let e = Shard::parse("auto/3", env(&both)).unwrap_err().to_string();
        assert!(
            e.contains("both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX"),
            "{e}"
        );
        let slurm = [(SLURM_ID, "1"), (SLURM_COUNT, "4")];
        let e = Shard::parse("auto/3", env(&slurm)).unwrap_err().to_string();
        assert!(e.contains("the Slurm array has 4 tasks"), "{e}");
        // Without a Slurm task id the count is not Slurm's to check.
        let k8s = [(KUBERNETES_INDEX, "2"), (SLURM_COUNT, "4")];
        assert_eq!(
            Shard::parse("auto/3", env(&k8s)).unwrap(),
            Shard { index: 2, count: 3 }
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |spec: &str, vars: &[(&str, &str)]| {
            Shard::parse(spec, env(vars)).unwrap_err().to_string()
        };
        assert!(
            err("auto/4", &[]).contains(SLURM_ID) && err("auto/4", &[]).contains(KUBERNETES_INDEX)
        );
        assert!(err("auto", &[(KUBERNETES_INDEX, "1")]).contains(SLURM_COUNT));
        assert!(err("4/4", &[]).contains("out of range"));
        assert!(err("auto/3", &[(KUBERNETES_INDEX, "3")]).contains("out of range"));
        assert!(err("1/0", &[]).contains("at least 1"));
        assert!(err("x/2", &[]).contains("'x'"));
        // One shard, one spelling: a sign is not part of a shard number.
        assert!(err("+0/2", &[]).contains("'+0'"));
        assert!(err("0/+2", &[]).contains("'+2'"));
        assert!(err("-1/2", &[]).contains("'-1'"));
        assert!(err("auto", &[(SLURM_ID, "+1"), (SLURM_COUNT, "2")]).contains("'+1'"));
        let off_step = [(SLURM_ID, "3"), (SLURM_COUNT, "4"), (SLURM_STEP, "2")];
        assert!(err("auto", &off_step).contains("not on the array's steps of 2"));
    }
}
