//! The front door on Windows (run under Wine in CI): std's and tokio's Windows settings reach
//! the child, and a Windows `ExitStatus` comes back.

#[cfg(windows)]
#[tokio::test]
async fn creation_flags_and_raw_arg_reach_a_windows_child() -> std::io::Result<()> {
    use process_transport_command::Command;

    const CREATE_NO_WINDOW: u32 = 0x0800_0000;
    let out = Command::new("cmd")
        .arg("/c")
        .raw_arg("\"echo hi& exit 4\"")
        .creation_flags(CREATE_NO_WINDOW)
        .output()
        .await?;
    assert_eq!(out.stdout, b"hi\r\n");
    assert_eq!(out.status.code(), Some(4));
    Ok(())
}

#[cfg(windows)]
#[test]
fn the_blocking_command_takes_std_s_windows_command_ext() -> std::io::Result<()> {
    use process_transport_command::blocking::windows::CommandExt;
    use process_transport_command::blocking::Command;

    let status = Command::new("cmd")
        .arg("/c")
        .raw_arg("\"exit 5\"")
        .creation_flags(0)
        .status()?;
    assert_eq!(status.code(), Some(5));
    Ok(())
}
