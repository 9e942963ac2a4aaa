//! What the sandbox probably denied, told from what a failed task left behind: its stderr and
//! stdout tails, its exit, the plugin's warnings and task events. Landlock denials surface as
//! EACCES ("Permission denied") on a path, seccomp denials as EPERM ("Operation not permitted")
//! or, with `kill_on_violation`, as SIGSYS. Each hint names the promise or unveil to add.
//! Pure: no IO, so every rule is unit-tested.

use std::collections::BTreeSet;

/// Everything known about a failed run.
#[derive(Clone, Debug, Default)]
pub struct Failure<'a> {
    /// Exit code (None when the task never started).
    pub exit_code: Option<i32>,
    /// Terminating signal (0 = none).
    pub signal: i32,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
    /// The runner stopped the task (Ctrl-C or --timeout), so a kill is expected.
    pub stopped_by_runner: bool,
    /// Last bytes of the task's stderr.
    pub stderr: &'a str,
    /// Last bytes of the task's stdout.
    pub stdout: &'a str,
    /// Plugin warnings and errors, and task events, one per entry.
    pub plugin_notes: &'a [String],
    /// The task's `promises` as configured (empty = the default).
    pub promises: &'a str,
    /// The task's `unveil` rules as configured.
    pub unveil: &'a [String],
}

/// Hints for the operator, most specific first, without duplicates.
pub fn hints(f: &Failure<'_>) -> Vec<String> {
    let promises: BTreeSet<&str> = if f.promises.trim().is_empty() {
        ["stdio", "rpath"].into()
    } else {
        f.promises.split_whitespace().collect()
    };
    let mut out: Vec<String> = Vec::new();
    let mut push = |h: String| {
        if !out.contains(&h) {
            out.push(h);
        }
    };
    if f.oom_killed {
        push(
            "the task was killed for running out of memory: raise resources.memory (or memory_max)"
                .into(),
        );
    }
    if f.signal == 31 {
        push(
            "the task was killed by SIGSYS: a system call outside its promises was made with \
              kill_on_violation = true; run without it to see which call fails (EPERM)"
                .into(),
        );
    }
    if f.signal == 9 && f.stopped_by_runner {
        push("the task did not exit on its kill_signal and was killed at kill_timeout".into());
    }
    for line in f.stderr.lines().chain(f.stdout.lines()) {
        let lower = line.to_ascii_lowercase();
        if lower.contains("permission denied") {
            for path in paths_in(line) {
                push(unveil_hint(&path, &lower, f.unveil));
            }
        }
        if lower.contains("operation not permitted") || lower.contains("[errno 1]") {
            push(eperm_hint(&lower, &promises));
        }
        // curl reports a denied socket() as a failed connect.
        if lower.contains("couldn't connect to server") && !promises.contains("inet") {
            push(missing(&promises, &["inet"], "network sockets"));
        }
        if [
            "temporary failure in name resolution",
            "could not resolve host",
            "name or service not known",
            "no address associated with hostname",
        ]
        .iter()
        .any(|p| lower.contains(p))
        {
            push(missing(&promises, &["dns", "inet"], "name resolution"));
        }
        if (lower.contains("not found") || lower.contains("no such file"))
            && f.exit_code == Some(127)
        {
            push(
                "exit code 127: the command was not found; give config.command as an absolute \
                  path, or check that it exists on this machine"
                    .into(),
            );
        }
    }
    for n in f.plugin_notes {
        let lower = n.to_ascii_lowercase();
        let violation =
            lower.contains("promise") && (lower.contains("needed") || lower.contains("denied"));
        let landlock = lower.contains("landlock") && lower.contains("not");
        if violation || landlock {
            push(format!("the plugin reported: {n}"));
        }
    }
    out
}

fn unveil_hint(path: &str, line: &str, unveil: &[String]) -> String {
    let writing = [
        "write",
        "creat",
        "mkdir",
        "touch",
        "can't open",
        "cannot open",
    ]
    .iter()
    .any(|w| line.contains(w));
    let covered = unveil
        .iter()
        .any(|r| rule_path(r).is_some_and(|p| path_within(path, p)));
    if covered {
        let perm = if writing { "rwc" } else { "rx" };
        format!(
            "{path:?} is unveiled but access was denied: the rule may lack a permission \
             (try unveil \"{perm}:{path}\"), or the file's owner/mode refuse the task's user"
        )
    } else {
        let perm = if writing { "rwc" } else { "r" };
        format!(
            "hint: add unveil \"{perm}:{path}\" (the sandbox hides paths that are not unveiled)"
        )
    }
}

fn eperm_hint(line: &str, promises: &BTreeSet<&str>) -> String {
    let table: &[(&[&str], &[&str], &str)] = &[
        (&["af_unix", "unix socket"], &["unix"], "unix sockets"),
        (
            &["socket", "connect", "bind", "listen", "errno 1] operation"],
            &["inet"],
            "network sockets",
        ),
        (&["fork", "spawn", "clone"], &["proc"], "creating processes"),
        (&["exec"], &["exec"], "executing programs"),
        (&["thread"], &["thread"], "creating threads"),
        (&["setuid", "setgid", "setgroups"], &["id"], "changing ids"),
        (&["chown"], &["chown"], "changing owners"),
        (
            &["chmod", "utime", "fchmod"],
            &["fattr"],
            "changing file attributes",
        ),
        (&["flock", "lock"], &["flock"], "file locks"),
        (&["ioctl", "tty", "terminal"], &["tty"], "terminal ioctls"),
        (&["mkfifo", "mknod"], &["dpath"], "creating special files"),
    ];
    for (words, needed, what) in table {
        if words.iter().any(|w| line.contains(w)) {
            return missing(promises, needed, what);
        }
    }
    format!(
        "a system call was denied (EPERM) by the sandbox; the task's promises are \"{}\": add the \
         promise for what the program was doing (see the promise table in the README)",
        promises.iter().copied().collect::<Vec<_>>().join(" ")
    )
}

fn missing(promises: &BTreeSet<&str>, needed: &[&str], what: &str) -> String {
    let lacking: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|p| !promises.contains(p))
        .collect();
    if lacking.is_empty() {
        format!(
            "{what} failed although promises {} are granted: an unveil rule or the host may be \
             what refuses it",
            needed.join(" ")
        )
    } else {
        format!(
            "hint: {what} need promise {} (add it to config.promises)",
            lacking
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(" and ")
        )
    }
}

/// Absolute paths mentioned in a line, with quotes and trailing punctuation removed.
fn paths_in(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `/bin/cat: /etc/passwd: Permission denied`: the first word is the program's own name.
    let line = match line.split_once(": ") {
        Some((first, rest)) if !first.contains(char::is_whitespace) => rest,
        _ => line,
    };
    for raw in line.split(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '`') {
        let t = raw.trim_end_matches([':', ',', ';', ')', '.']);
        let t = t.trim_start_matches('(');
        if t.starts_with('/') && t.len() > 1 && !out.iter().any(|p| p == t) {
            out.push(t.to_owned());
        }
    }
    out
}

/// The path of an unveil rule (`[perm:]path`).
fn rule_path(rule: &str) -> Option<&str> {
    if rule.starts_with('/') {
        return Some(rule);
    }
    rule.split_once(':')
        .map(|(_, p)| p)
        .filter(|p| p.starts_with('/'))
}

fn path_within(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    root.is_empty() || path == root || path.starts_with(&format!("{root}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cat_of_a_hidden_file_suggests_the_unveil() {
        let h = hints(&Failure {
            exit_code: Some(1),
            stderr: "/bin/cat: /etc/passwd: Permission denied\n",
            promises: "stdio rpath",
            ..Failure::default()
        });
        assert_eq!(
            h,
            vec!["hint: add unveil \"r:/etc/passwd\" (the sandbox hides paths that are not unveiled)"]
        );
    }

    #[test]
    fn python_write_denial_suggests_write_permissions() {
        let h = hints(&Failure {
            exit_code: Some(1),
            stderr: "PermissionError: [Errno 13] Permission denied: '/var/lib/app/db' (while trying to write)\n",
            ..Failure::default()
        });
        assert!(h[0].contains("unveil \"rwc:/var/lib/app/db\""), "{h:?}");
    }

    #[test]
    fn already_unveiled_paths_get_a_different_hint() {
        let rules = vec!["r:/srv".to_owned()];
        let h = hints(&Failure {
            stderr: "sh: 1: cannot create /srv/out: Permission denied",
            unveil: &rules,
            ..Failure::default()
        });
        assert!(h[0].contains("is unveiled but access was denied"), "{h:?}");
        assert!(h[0].contains("rwc:/srv/out"), "{h:?}");
    }

    #[test]
    fn socket_eperm_suggests_inet_unless_granted() {
        let h = hints(&Failure {
            stderr: "PermissionError: [Errno 1] Operation not permitted\n  in socket.socket()",
            promises: "stdio rpath",
            ..Failure::default()
        });
        assert_eq!(
            h,
            vec!["hint: network sockets need promise \"inet\" (add it to config.promises)"]
        );
        let h = hints(&Failure {
            stderr: "socket: Operation not permitted",
            promises: "stdio inet",
            ..Failure::default()
        });
        assert!(h[0].contains("although promises inet are granted"), "{h:?}");
    }

    #[test]
    fn curl_connect_failure_without_inet_suggests_inet() {
        let h = hints(&Failure {
            stderr: "curl: (7) Failed to connect to 127.0.0.1 port 80 after 0 ms: Couldn't connect to server",
            promises: "stdio rpath",
            ..Failure::default()
        });
        assert_eq!(
            h,
            vec!["hint: network sockets need promise \"inet\" (add it to config.promises)"]
        );
        let granted = hints(&Failure {
            stderr: "curl: (7) Failed to connect to 127.0.0.1 port 80 after 0 ms: Couldn't connect to server",
            promises: "stdio rpath inet",
            ..Failure::default()
        });
        assert!(granted.is_empty(), "{granted:?}");
    }

    #[test]
    fn dns_sigsys_oom_and_kill_timeout() {
        let h = hints(&Failure {
            stderr: "curl: (6) Could not resolve host: example.com",
            promises: "stdio rpath inet",
            ..Failure::default()
        });
        assert_eq!(
            h,
            vec!["hint: name resolution need promise \"dns\" (add it to config.promises)"]
        );
        let h = hints(&Failure {
            signal: 31,
            ..Failure::default()
        });
        assert!(h[0].contains("SIGSYS"), "{h:?}");
        let h = hints(&Failure {
            oom_killed: true,
            ..Failure::default()
        });
        assert!(h[0].contains("out of memory"), "{h:?}");
        let h = hints(&Failure {
            signal: 9,
            stopped_by_runner: true,
            ..Failure::default()
        });
        assert!(h[0].contains("kill_timeout"), "{h:?}");
    }

    #[test]
    fn nothing_to_say_for_an_ordinary_failure() {
        assert!(hints(&Failure {
            exit_code: Some(3),
            stderr: "usage: prog [-x]",
            ..Failure::default()
        })
        .is_empty());
    }
}
