//! The workspace's helper program: the children of the contract suite where `sh` and `cat`
//! are not there (Windows), as subcommands. `process_transport_contract::HelperCatalog` starts
//! it; each subcommand does what the `Child` of the same name documents.
//!
//! ```text
//! pt-helper cat              copy stdin to stdout as it arrives; exit 0 at end of file
//! pt-helper cat-to-stderr    the same, to stderr
//! pt-helper exit N           exit with code N
//! pt-helper talk             "out\n" on stdout, "err\n" on stderr; exit 0
//! pt-helper wait             "ready\n" on stdout, then wait (reading nothing) until killed
//! pt-helper grandchild       start `pt-helper cat` holding this process's stdio, print
//!                            "ready\n" and exit 0
//! pt-helper print-env NAME   the value of NAME on stdout, no newline; exit 0
//! pt-helper pwd              the working directory and a newline; exit 0
//! pt-helper spew N           N bytes of `x` on stdout; exit 0 (101 if stdout breaks)
//! ```

use std::io::{self, Read, Write};
use std::process::ExitCode;

fn copy(mut to: impl Write) -> io::Result<()> {
    let mut stdin = io::stdin().lock();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = match stdin.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // A broken stdin (its writer gone) ends the input, as end of file does.
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(err) => return Err(err),
        };
        to.write_all(&buffer[..read])?;
        to.flush()?;
    }
}

fn print(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

fn run(args: &[String]) -> io::Result<u8> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["cat"] => copy(io::stdout().lock()).map(|()| 0),
        ["cat-to-stderr"] => copy(io::stderr().lock()).map(|()| 0),
        ["exit", code] => code
            .parse::<u8>()
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, format!("{code}: {err}"))),
        ["talk"] => {
            print("out\n")?;
            let mut stderr = io::stderr().lock();
            stderr.write_all(b"err\n")?;
            stderr.flush()?;
            Ok(0)
        }
        ["wait"] => {
            print("ready\n")?;
            loop {
                std::thread::park();
            }
        }
        ["grandchild"] => {
            // Holds stdin, stdout and stderr (inherited) until its stdin ends.
            std::process::Command::new(std::env::current_exe()?)
                .arg("cat")
                .spawn()?;
            print("ready\n")?;
            Ok(0)
        }
        ["print-env", name] => {
            let value = std::env::var_os(name).unwrap_or_default();
            print(&value.to_string_lossy())?;
            Ok(0)
        }
        ["spew", count] => {
            let count = count.parse::<usize>().map_err(|err| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("{count}: {err}"))
            })?;
            let mut stdout = io::stdout().lock();
            let chunk = [b'x'; 64 * 1024];
            let mut left = count;
            while left > 0 {
                let now = left.min(chunk.len());
                stdout.write_all(&chunk[..now])?;
                left -= now;
            }
            stdout.flush().map(|()| 0)
        }
        ["pwd"] => print(&format!("{}\n", std::env::current_dir()?.display())).map(|()| 0),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown command {words:?}; see the source's doc comment"),
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("pt-helper: {err}");
            ExitCode::from(101)
        }
    }
}
