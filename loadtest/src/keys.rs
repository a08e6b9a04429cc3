//! API keys for the simulated users, created through the exchange's own
//! command: `exchange --config CONFIG keys create --user NAME`, which prints
//! the key and its secret once.

use std::path::Path;
use std::process::Command;

use clientkit::Credentials;

pub use crate::error::KeysError;

/// Subprocesses run at once while creating keys.
const PARALLEL: usize = 4;

/// Reads the key and the secret from the output of `keys create`:
///
/// ```text
/// user:    alice (id 3)
/// api key: 0123abcd...
/// secret:  4567ef01...
/// ```
pub fn parse_keys_output(stdout: &str) -> Result<Credentials, KeysError> {
    parse_credentials(stdout, "api key:")
}

/// The key after `key_label` and the secret after `secret:` in `stdout`.
fn parse_credentials(stdout: &str, key_label: &str) -> Result<Credentials, KeysError> {
    let field = |label: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(str::to_string)
    };
    match (field(key_label), field("secret:")) {
        (Some(api_key), Some(secret)) => Ok(Credentials { api_key, secret }),
        _ => Err(KeysError::Output(stdout.chars().take(300).collect())),
    }
}

/// Runs `binary [--config C] ARGS` and returns what it printed.
fn run_exchange(binary: &Path, config: Option<&Path>, args: &[&str]) -> Result<String, KeysError> {
    let mut cmd = Command::new(binary);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(args);
    let out = cmd.output().map_err(|e| KeysError::Spawn {
        binary: binary.to_path_buf(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(KeysError::Failed {
            command: format!("{} {}", binary.display(), args.join(" ")),
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates one key for `user` by running `binary`.
pub fn create_key(
    binary: &Path,
    config: Option<&Path>,
    user: &str,
) -> Result<Credentials, KeysError> {
    let out = run_exchange(binary, config, &["keys", "create", "--user", user])?;
    parse_keys_output(&out)
}

/// Creates an operator's admin key (it signs the admin API, which funds
/// the users): `exchange admin-keys create --name NAME`.
pub fn create_admin_key(
    binary: &Path,
    config: Option<&Path>,
    name: &str,
) -> Result<Credentials, KeysError> {
    let out = run_exchange(binary, config, &["admin-keys", "create", "--name", name])?;
    parse_credentials(&out, "admin key:")
}

/// Creates a key for each of `users`, a few subprocesses at a time; the
/// keys are in the order of `users`.
pub fn create_keys(
    binary: &Path,
    config: Option<&Path>,
    users: &[String],
) -> Result<Vec<Credentials>, KeysError> {
    let chunk = users.len().div_ceil(PARALLEL).max(1);
    let results: Vec<Result<Vec<Credentials>, KeysError>> = std::thread::scope(|s| {
        let handles: Vec<_> = users
            .chunks(chunk)
            .map(|names| {
                s.spawn(move || {
                    names
                        .iter()
                        .map(|n| create_key(binary, config, n))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(KeysError::Panicked)))
            .collect()
    });
    let mut keys = Vec::with_capacity(users.len());
    for r in results {
        keys.extend(r?);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "user:    lt-1 (id 3)\napi key: 0a1b2c3d\nsecret:  9f8e7d6c\n(the secret is shown only now; keep it)\n";

    #[test]
    fn parses_the_printed_key() {
        let c = parse_keys_output(OUTPUT).expect("valid");
        assert_eq!(c.api_key, "0a1b2c3d");
        assert_eq!(c.secret, "9f8e7d6c");
        assert!(parse_keys_output("user: x\n").is_err());
        assert!(parse_keys_output("api key: a b\nsecret: c\n").is_err());
    }

    #[test]
    fn runs_the_key_command_as_a_subprocess() {
        // A stand-in for the exchange binary that prints what `keys create`
        // prints and checks its arguments.
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("exchange");
        std::fs::write(
            &script,
            "#!/bin/sh\n[ \"$1\" = --config ] && [ \"$3 $4 $5\" = \"keys create --user\" ] || exit 3\n\
             printf 'user:    %s (id 1)\\napi key: key%s\\nsecret:  sec%s\\n' \"$6\" \"$6\" \"$6\"\n",
        )
        .expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let names: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
        let keys = create_keys(&script, Some(Path::new("cfg.toml")), &names).expect("created");
        let got: Vec<&str> = keys.iter().map(|k| k.api_key.as_str()).collect();
        assert_eq!(got, ["keyu0", "keyu1", "keyu2", "keyu3", "keyu4", "keyu5"]);
        assert_eq!(keys[2].secret, "secu2");
        let e = create_keys(&script, None, &names)
            .expect_err("no --config: exit 3")
            .to_string();
        assert!(e.contains("failed"), "{e}");
        let e = create_key(&dir.path().join("missing"), None, "x")
            .expect_err("no binary")
            .to_string();
        assert!(e.contains("cannot run"), "{e}");
    }
}
