//! Names from the command line, and `ringlink probe` and `ringlink ls`, which report on them.

use ringlink::{Error, Name, NameState};

use crate::args::NameArgs;

/// The name `args` give: plain, Qt's (`--qt`) or abstract (`--abstract`).
pub fn resolve(args: &NameArgs) -> Result<Name, Error> {
    if args.qt {
        Name::qt(&args.name)
    } else if args.abstract_name {
        Name::abstract_name(&args.name)
    } else {
        Name::new(&args.name)
    }
}

/// `ringlink probe`: exit status 0 when a live server answers, 1 otherwise.
pub fn probe(args: &NameArgs) -> Result<i32, Error> {
    let name = resolve(args)?;
    let state = name.state()?;
    match state {
        NameState::Live { .. } => {
            println!("{name}: {state}");
            Ok(0)
        }
        NameState::Stale => {
            println!("{name}: stale (its server died; the next `ringlink listen` reclaims it)");
            Ok(1)
        }
        NameState::Occupied => {
            println!(
                "{name}: occupied by something ringlink will not replace (a file that is not a \
                 socket, another user's dead socket, or a lock file ringlink did not make); \
                 `ringlink listen` refuses it: remove it or pick another name"
            );
            Ok(1)
        }
        _ => {
            println!("{name}: no server");
            Ok(1)
        }
    }
}

/// `ringlink ls`: the names in the private directory, or in Qt's with `qt`.
pub fn ls(qt: bool) -> Result<i32, Error> {
    let dir = if qt {
        Name::qt("x")?
            .path()
            .and_then(|p| p.parent())
            .map(|p| p.to_path_buf())
            .unwrap_or_default()
    } else {
        Name::private_dir()?
    };
    let names = Name::list_dir(&dir)?;
    if names.is_empty() {
        eprintln!("ringlink: no names in {}", dir.display());
        return Ok(0);
    }
    let width = names
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<width$}  {:<16}  PATH", "NAME", "STATE");
    for (label, name) in names {
        let state = match name.state() {
            Ok(s) => s.to_string(),
            Err(e) => format!("unknown ({})", e.kind()),
        };
        println!("{label:<width$}  {state:<16}  {name}");
    }
    Ok(0)
}
