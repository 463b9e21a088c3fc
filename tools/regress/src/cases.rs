//! Runs named cases, one line each, and sums up.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::failure::Failure;
use crate::options::CommonArgs;

/// A tool's case: its name (`short-name: what it checks`) and what it runs, given the
/// tool's environment `E` (what every case needs: the binaries, deadlines, options).
pub type Case<E> = (&'static str, fn(&E) -> Result<(), Failure>);

/// A case that cannot exist on this target: its name and why. The tool prints it as
/// `n/a  NAME: why` (neither passed nor failed) so that nothing is skipped silently.
pub type Absent = (&'static str, &'static str);

/// The outcome of one case.
#[derive(Debug)]
pub struct Outcome {
    /// Its name.
    pub name: String,
    /// `Err` with why it failed.
    pub result: Result<(), String>,
}

/// Runs cases and prints the contract's lines.
pub struct Runner {
    /// Longest a case may run; past it, it fails (its thread is left behind and dies with
    /// the tool).
    case_timeout: Duration,
    outcomes: Vec<Outcome>,
}

impl Runner {
    /// A runner giving each case at most `case_timeout`.
    pub fn new(case_timeout: Duration) -> Self {
        Self {
            case_timeout,
            outcomes: Vec::new(),
        }
    }

    /// Runs the `cases` that `common` selects, each on its own thread with `env`, then
    /// prints the summary and gives the exit status (see [`finish`](Self::finish)).
    pub fn run_selected<E: Send + Sync + 'static>(
        common: &CommonArgs,
        env: E,
        cases: &[Case<E>],
    ) -> ExitCode {
        Self::run_selected_with_absent(common, env, cases, &[])
    }

    /// [`run_selected`](Self::run_selected), and before the summary an `n/a` line for each
    /// selected case of `absent` (cases of the tool that cannot exist on this target).
    pub fn run_selected_with_absent<E: Send + Sync + 'static>(
        common: &CommonArgs,
        env: E,
        cases: &[Case<E>],
        absent: &[Absent],
    ) -> ExitCode {
        let env = Arc::new(env);
        let mut runner = Runner::new(common.case_timeout());
        for &(name, case) in cases {
            if !common.selected(name) {
                continue;
            }
            let env = env.clone();
            runner.run(name, move || case(&env));
        }
        for &(name, why) in absent {
            if common.selected(name) {
                runner.not_applicable(name, why);
            }
        }
        runner.finish()
    }

    /// Runs `case` on its own thread and prints its line.
    pub fn run(&mut self, name: &str, case: impl FnOnce() -> Result<(), Failure> + Send + 'static) {
        eprintln!("--- {name}");
        let started = Instant::now();
        let (done, outcome) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(case)).unwrap_or_else(|panic| {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".to_string());
                    Err(Failure::Panic(why))
                });
                // The runner may have given up on us already.
                let _ = done.send(result);
            });
        let result = match spawned {
            Ok(_) => match outcome.recv_timeout(self.case_timeout) {
                Ok(result) => result,
                Err(_) => Err(Failure::TimedOut(self.case_timeout)),
            },
            Err(error) => Err(Failure::Io {
                what: "start the case's thread".to_string(),
                error,
            }),
        };
        let result = result.map_err(|failure| failure.to_string());
        match &result {
            Ok(()) => println!("ok   {name}"),
            Err(why) => println!("FAIL {name}: {why}"),
        }
        let _ = std::io::stdout().flush();
        eprintln!("--- {name}: {:.2} s", started.elapsed().as_secs_f64());
        self.outcomes.push(Outcome {
            name: name.to_string(),
            result,
        });
    }

    /// Prints that the case `name` cannot exist on this target, and why; it counts as
    /// neither passed nor failed.
    pub fn not_applicable(&mut self, name: &str, why: &str) {
        println!("n/a  {name}: {why}");
        let _ = std::io::stdout().flush();
    }

    /// The outcomes so far.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// Prints `N passed, M failed` and gives the exit status.
    pub fn finish(self) -> ExitCode {
        let failed = self.outcomes.iter().filter(|o| o.result.is_err()).count();
        let passed = self.outcomes.len() - failed;
        println!("{passed} passed, {failed} failed");
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
