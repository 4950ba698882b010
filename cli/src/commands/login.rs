//! `skiff login` / `logout`.

use std::io::{BufRead, IsTerminal, Write};

use skiff_daemon::{Engine, EngineError};
use skiff_image_store::auth::Credentials;
use skiff_image_store::reference::DOCKER_HUB;

use crate::options::LoginArgs;

fn config_error(why: &str) -> EngineError {
    EngineError::Config {
        path: "login".into(),
        why: why.into(),
    }
}

fn prompt(label: &str) -> Result<String, EngineError> {
    print!("{label}: ");
    let _ = std::io::stdout().flush();
    let mut s = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut s)
        .map_err(|e| config_error(&e.to_string()))?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

/// Checks credentials with the registry and stores them (0600).
pub async fn login(engine: &Engine, a: &LoginArgs) -> Result<u8, EngineError> {
    let server = a.server.clone().unwrap_or_else(|| DOCKER_HUB.to_string());
    let username = match &a.username {
        Some(u) => u.clone(),
        None if std::io::stdin().is_terminal() => prompt("Username")?,
        None => {
            return Err(config_error(
                "username required (-u) when stdin is not a terminal",
            ))
        }
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut s)
            .map_err(|e| config_error(&e.to_string()))?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else {
        prompt("Password")?
    };
    if username.is_empty() || password.is_empty() {
        return Err(config_error("username and password must not be empty"));
    }
    engine
        .login(&server, Credentials { username, password })
        .await?;
    println!("Login Succeeded");
    Ok(0)
}

/// Removes stored credentials.
pub fn logout(engine: &Engine, server: Option<&str>) -> Result<u8, EngineError> {
    let server = server.unwrap_or(DOCKER_HUB);
    if engine.logout(server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}
