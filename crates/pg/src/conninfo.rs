//! libpq's connection conventions, so that the runbook's `psql` lines and its `backstop` lines
//! reach the same server as the same role: what the operator gives (a URL, `key=value` pairs or
//! a bare database name, as psql takes them), then the service file's entry, then the `PG*`
//! variables, then the defaults; the password, when none of those has one, from the password
//! file. Each step only fills what the earlier ones left unset, as in libpq.
//!
//! The reading is pure: the environment comes in as a lookup ([`Environment`]), so every rule
//! is tested without touching the process's own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{ConnectError, PgTarget, TlsMode, tls_mode};

/// The variables libpq reads, by the keyword each one sets.
const VARIABLES: &[(&str, &str)] = &[
    ("host", "PGHOST"),
    ("hostaddr", "PGHOSTADDR"),
    ("port", "PGPORT"),
    ("dbname", "PGDATABASE"),
    ("user", "PGUSER"),
    ("password", "PGPASSWORD"),
    ("passfile", "PGPASSFILE"),
    ("service", "PGSERVICE"),
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("application_name", "PGAPPNAME"),
    ("options", "PGOPTIONS"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
    ("channel_binding", "PGCHANNELBINDING"),
];

/// The keywords Backstop reads itself; every other one goes to tokio-postgres, which refuses
/// those it does not know.
const OWN_KEYWORDS: &[&str] = &["password", "passfile", "service", "sslmode", "sslrootcert"];

/// The directories libpq's builds put their socket in (Debian's first, then upstream's).
const SOCKET_DIRECTORIES: &[&str] = &["/var/run/postgresql", "/tmp"];

/// What the conventions read besides the operator's string: variables and files.
pub struct Environment<'a> {
    /// A variable's value (`std::env::var` in the CLI).
    pub variable: &'a dyn Fn(&str) -> Option<String>,
    /// The home directory (`~/.pgpass`, `~/.pg_service.conf`).
    pub home: Option<PathBuf>,
    /// The operating-system user name, libpq's default role.
    pub os_user: Option<String>,
    /// Whether a socket file exists (the default host is the socket directory that has one).
    pub socket_exists: &'a dyn Fn(&Path) -> bool,
}

impl Environment<'_> {
    /// The running process's environment.
    pub fn of_process() -> Environment<'static> {
        Environment {
            variable: &|name| std::env::var(name).ok().filter(|v| !v.is_empty()),
            home: std::env::var_os("HOME").map(PathBuf::from),
            os_user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .ok()
                .filter(|u| !u.is_empty()),
            socket_exists: &|path| path.exists(),
        }
    }
}

/// The target psql would connect to for `given` (`None`: from the environment alone).
pub fn resolve(given: Option<&str>, env: &Environment<'_>) -> Result<PgTarget, ConnectError> {
    let mut settings = match given.map(str::trim).filter(|g| !g.is_empty()) {
        Some(given) => parse(given)?,
        None => BTreeMap::new(),
    };
    let mut tried = Vec::new();
    if settings.contains_key("password") {
        tried.push("the connection string".to_string());
    }
    apply_service(&mut settings, env, &mut tried)?;
    for (keyword, variable) in VARIABLES {
        if !settings.contains_key(*keyword)
            && let Some(value) = (env.variable)(variable)
        {
            settings.insert((*keyword).to_string(), value);
        }
    }
    tried.push("PGPASSWORD".into());
    apply_defaults(&mut settings, env);
    if !settings.contains_key("password")
        && let Some(file) = password_file(&settings, env)
    {
        match password_from_file(&file, &settings) {
            PasswordLookup::Found(password) => {
                settings.insert("password".into(), password);
            }
            PasswordLookup::NoMatch => tried.push(format!(
                "{} (no line for {})",
                file.display(),
                passfile_key(&settings)
            )),
            PasswordLookup::TooOpen => {
                tracing::warn!(
                    "password file {} has group or world access and is ignored; chmod 0600 it",
                    file.display()
                );
                tried.push(format!("{} (ignored: readable by others)", file.display()));
            }
        }
    }
    into_target(&settings, tried)
}

/// The settings in `given`: a `postgres://` URL, `key=value` pairs, or a database name.
pub fn parse(given: &str) -> Result<BTreeMap<String, String>, ConnectError> {
    if given.starts_with("postgres://") || given.starts_with("postgresql://") {
        parse_uri(given)
    } else if given.contains('=') {
        parse_pairs(given)
    } else if given.contains("//") || given.contains(":/") {
        // A URL mistyped, far likelier than a database named so. Not echoed: it may hold a
        // password.
        Err(invalid(
            "it is neither a postgresql:// URL, key=value pairs nor a database name".to_string(),
        ))
    } else {
        Ok(BTreeMap::from([("dbname".to_string(), given.to_string())]))
    }
}

fn invalid(what: impl Into<String>) -> ConnectError {
    ConnectError::InvalidUrl(what.into())
}

fn parse_uri(given: &str) -> Result<BTreeMap<String, String>, ConnectError> {
    let url = url::Url::parse(given).map_err(|e| invalid(e.to_string()))?;
    let decode = |s: &str| {
        percent_decode(s).ok_or_else(|| invalid("a percent-escape in the URL is not UTF-8"))
    };
    let mut settings = BTreeMap::new();
    if !url.username().is_empty() {
        settings.insert("user".into(), decode(url.username())?);
    }
    if let Some(password) = url.password() {
        settings.insert("password".into(), decode(password)?);
    }
    if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        settings.insert("host".into(), decode(host)?);
    }
    if let Some(port) = url.port() {
        settings.insert("port".into(), port.to_string());
    }
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() {
        settings.insert("dbname".into(), decode(path)?);
    }
    for (key, value) in url.query_pairs() {
        settings.insert(key.into_owned(), value.into_owned());
    }
    Ok(settings)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `key=value key='quoted \' value'`, as libpq reads them.
fn parse_pairs(given: &str) -> Result<BTreeMap<String, String>, ConnectError> {
    let mut settings = BTreeMap::new();
    let mut chars = given.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(settings);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(invalid(format!("`{key}` has no `=value`")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(invalid(format!("the value of `{key}` has no closing '"))),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        settings.insert(key, value);
    }
}

/// Fills what `service` (from the string or `PGSERVICE`) sets in the service file.
fn apply_service(
    settings: &mut BTreeMap<String, String>,
    env: &Environment<'_>,
    tried: &mut Vec<String>,
) -> Result<(), ConnectError> {
    let Some(name) = settings
        .get("service")
        .cloned()
        .or_else(|| (env.variable)("PGSERVICE"))
    else {
        return Ok(());
    };
    let files: Vec<PathBuf> = [
        (env.variable)("PGSERVICEFILE").map(PathBuf::from),
        env.home.as_ref().map(|h| h.join(".pg_service.conf")),
        Some(
            (env.variable)("PGSYSCONFDIR")
                .map_or_else(|| PathBuf::from("/etc/postgresql-common"), PathBuf::from)
                .join("pg_service.conf"),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        if let Some(entry) = service_entry(&text, &name) {
            if entry.contains_key("password") && !settings.contains_key("password") {
                tried.push(format!("service `{name}` in {}", file.display()));
            }
            for (key, value) in entry {
                settings.entry(key).or_insert(value);
            }
            return Ok(());
        }
    }
    let looked: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    Err(invalid(format!(
        "service `{name}` is not defined in {}; check PGSERVICE or PGSERVICEFILE",
        looked.join(", ")
    )))
}

/// The `key=value` lines of `[name]` in a service file.
pub fn service_entry(text: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let mut entry: Option<BTreeMap<String, String>> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if entry.is_some() {
                break;
            }
            if section.trim() == name {
                entry = Some(BTreeMap::new());
            }
            continue;
        }
        if let Some(entry) = entry.as_mut()
            && let Some((key, value)) = line.split_once('=')
        {
            entry.insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    entry
}

/// libpq's defaults: the socket directory that has this port's socket (else `localhost`),
/// port 5432, the operating-system user, a database named as the user.
fn apply_defaults(settings: &mut BTreeMap<String, String>, env: &Environment<'_>) {
    let port = settings
        .get("port")
        .cloned()
        .unwrap_or_else(|| "5432".into());
    if !settings.contains_key("host") && !settings.contains_key("hostaddr") {
        let socket_dir = SOCKET_DIRECTORIES
            .iter()
            .find(|dir| (env.socket_exists)(&Path::new(dir).join(format!(".s.PGSQL.{port}"))));
        settings.insert(
            "host".into(),
            socket_dir.map_or_else(|| "localhost".to_string(), |d| (*d).to_string()),
        );
    }
    settings.entry("port".into()).or_insert(port);
    if !settings.contains_key("user")
        && let Some(user) = &env.os_user
    {
        settings.insert("user".into(), user.clone());
    }
    if !settings.contains_key("dbname")
        && let Some(user) = settings.get("user").cloned()
    {
        settings.insert("dbname".into(), user);
    }
}

fn password_file(settings: &BTreeMap<String, String>, env: &Environment<'_>) -> Option<PathBuf> {
    settings
        .get("passfile")
        .map(PathBuf::from)
        .or_else(|| env.home.as_ref().map(|h| h.join(".pgpass")))
}

/// The host a password file line is matched against: `localhost` for a Unix socket in a
/// default directory, as libpq does.
fn passfile_host(settings: &BTreeMap<String, String>) -> String {
    let host = settings
        .get("host")
        .filter(|h| !h.is_empty())
        .or_else(|| settings.get("hostaddr"))
        .map_or("localhost", String::as_str);
    // One host of a list: the first, which is the one this connection tries.
    let host = host.split(',').next().unwrap_or(host);
    if SOCKET_DIRECTORIES.contains(&host) {
        "localhost".into()
    } else {
        host.to_string()
    }
}

fn passfile_key(settings: &BTreeMap<String, String>) -> String {
    let get = |k: &str| settings.get(k).map_or("", String::as_str);
    format!(
        "{}:{}:{}:{}",
        passfile_host(settings),
        get("port"),
        get("dbname"),
        get("user")
    )
}

/// What a password file gave.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordLookup {
    Found(String),
    NoMatch,
    /// Readable by others: libpq ignores it, and so does Backstop.
    TooOpen,
}

fn password_from_file(file: &Path, settings: &BTreeMap<String, String>) -> PasswordLookup {
    let Ok(metadata) = std::fs::metadata(file) else {
        return PasswordLookup::NoMatch;
    };
    if !metadata.is_file() {
        return PasswordLookup::NoMatch;
    }
    if std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o077 != 0 {
        return PasswordLookup::TooOpen;
    }
    let Ok(text) = std::fs::read_to_string(file) else {
        return PasswordLookup::NoMatch;
    };
    let get = |k: &str| settings.get(k).map_or("", String::as_str);
    match password_line(
        &text,
        [
            passfile_host(settings).as_str(),
            get("port"),
            get("dbname"),
            get("user"),
        ],
    ) {
        Some(password) => PasswordLookup::Found(password),
        None => PasswordLookup::NoMatch,
    }
}

/// The password of the first line of a password file matching `host:port:dbname:user`
/// (`*` matches anything; `\:` and `\\` are a literal colon and backslash).
pub fn password_line(text: &str, wanted: [&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_fields(line.trim_end_matches('\r'));
        let [host, port, dbname, user, password] = fields.as_slice() else {
            continue;
        };
        let matches = [host, port, dbname, user]
            .iter()
            .zip(wanted)
            .all(|(field, value)| field.as_str() == "*" || field.as_str() == value);
        if matches {
            return Some(password.clone());
        }
    }
    None
}

fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next()
                    && let Some(field) = fields.last_mut()
                {
                    field.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(field) = fields.last_mut() {
                    field.push(c);
                }
            }
        }
    }
    fields
}

/// The settings as a target: Backstop's own keywords taken out, the rest handed to
/// tokio-postgres as quoted `key='value'` pairs.
fn into_target(
    settings: &BTreeMap<String, String>,
    tried: Vec<String>,
) -> Result<PgTarget, ConnectError> {
    let tls = match settings.get("sslmode") {
        Some(mode) => tls_mode(mode)?,
        None => TlsMode::Prefer,
    };
    let root_cert = settings.get("sslrootcert").map(PathBuf::from);
    let pairs: Vec<String> = settings
        .iter()
        .filter(|(key, _)| !OWN_KEYWORDS.contains(&key.as_str()))
        .map(|(key, value)| format!("{key}='{}'", quote(value)))
        .collect();
    let mut config = pairs
        .join(" ")
        .parse::<tokio_postgres::Config>()
        .map_err(|e| invalid(e.to_string()))?;
    if let Some(password) = settings.get("password") {
        config.password(password.as_str());
    }
    let mut target = PgTarget {
        config,
        tls,
        root_cert: None,
        password_sources: Vec::new(),
    }
    .with_tls(tls, root_cert);
    if !settings.contains_key("password") {
        target.password_sources = tried;
    }
    Ok(target)
}

fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with<'a>(
        variable: &'a dyn Fn(&str) -> Option<String>,
        home: Option<PathBuf>,
    ) -> Environment<'a> {
        Environment {
            variable,
            home,
            os_user: Some("alice".into()),
            socket_exists: &|_| false,
        }
    }

    #[test]
    fn a_bare_word_is_a_database_name_and_the_rest_comes_from_variables() {
        let vars = |name: &str| match name {
            "PGHOST" => Some("db.internal".to_string()),
            "PGPORT" => Some("6432".to_string()),
            "PGUSER" => Some("backup".to_string()),
            "PGSSLMODE" => Some("verify-full".to_string()),
            _ => None,
        };
        let t = resolve(Some("app"), &env_with(&vars, None)).unwrap();
        assert_eq!(t.config.get_dbname(), Some("app"));
        assert_eq!(t.config.get_user(), Some("backup"));
        assert_eq!(t.config.get_ports(), &[6432]);
        assert_eq!(t.tls, TlsMode::VerifyFull);
        // What is given wins over the variables.
        let t = resolve(
            Some("postgresql://other@h:5433/x?sslmode=disable"),
            &env_with(&vars, None),
        )
        .unwrap();
        assert_eq!(t.config.get_user(), Some("other"));
        assert_eq!(t.config.get_ports(), &[5433]);
        assert_eq!(t.tls, TlsMode::Disable);
    }

    #[test]
    fn defaults_are_libpqs() {
        let none = |_: &str| None;
        let t = resolve(None, &env_with(&none, None)).unwrap();
        assert_eq!(t.config.get_user(), Some("alice"));
        assert_eq!(t.config.get_dbname(), Some("alice"));
        assert_eq!(t.config.get_ports(), &[5432]);
        let socket = Environment {
            socket_exists: &|p| p == Path::new("/var/run/postgresql/.s.PGSQL.5432"),
            ..env_with(&none, None)
        };
        let t = resolve(Some("app"), &socket).unwrap();
        assert!(matches!(
            t.config.get_hosts(),
            [tokio_postgres::config::Host::Unix(p)] if p == Path::new("/var/run/postgresql")
        ));
    }

    #[test]
    fn pairs_and_urls_decode_quotes_and_escapes() {
        let s = parse(r"host=h dbname='my db' password='it\'s' user = u").unwrap();
        assert_eq!(s["dbname"], "my db");
        assert_eq!(s["password"], "it's");
        assert_eq!(s["user"], "u");
        let s = parse(
            "postgresql://us%40r:p%3Ass@%2Fvar%2Frun%2Fpostgresql:5433/d%20b?application_name=x",
        )
        .unwrap();
        assert_eq!(s["user"], "us@r");
        assert_eq!(s["password"], "p:ss");
        assert_eq!(s["host"], "/var/run/postgresql");
        assert_eq!(s["dbname"], "d b");
        let s = parse("postgresql:///app?host=/tmp&port=5999").unwrap();
        assert_eq!((s["host"].as_str(), s["port"].as_str()), ("/tmp", "5999"));
        assert!(parse("host='h").is_err());
        assert!(parse("postgres//oops").is_err());
        let e = parse("postgres//u:s3cret@h/d").unwrap_err().to_string();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(parse("postgresq://h/d").is_err());
    }

    #[test]
    fn password_file_lines_match_with_wildcards_and_escapes() {
        let text = "# comment\n\
                    other:5432:*:u:wrong\n\
                    db.internal:5432:app:backup:first\n\
                    *:*:*:backup:any\\:thing\\\\\n";
        assert_eq!(
            password_line(text, ["db.internal", "5432", "app", "backup"]).as_deref(),
            Some("first")
        );
        assert_eq!(
            password_line(text, ["h", "6432", "x", "backup"]).as_deref(),
            Some("any:thing\\")
        );
        assert_eq!(password_line(text, ["h", "1", "x", "nobody"]), None);
    }

    #[test]
    fn service_entries_are_read_by_section() {
        let text = "[prod]\nhost=db\nport = 6432\n# no\n[test]\nhost=t\n";
        let entry = service_entry(text, "prod").unwrap();
        assert_eq!(entry["host"], "db");
        assert_eq!(entry["port"], "6432");
        assert!(!entry.contains_key("test"));
        assert!(service_entry(text, "none").is_none());
    }

    #[test]
    fn a_missing_service_says_where_it_looked() {
        let vars = |name: &str| (name == "PGSERVICE").then(|| "nowhere".to_string());
        let e = resolve(None, &env_with(&vars, Some("/h".into())))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("service `nowhere`") && e.contains("/h/.pg_service.conf"),
            "{e}"
        );
    }

    #[test]
    fn without_a_password_the_target_says_where_it_looked() {
        let none = |_: &str| None;
        let t = resolve(
            Some("host=h user=u dbname=d"),
            &env_with(&none, Some("/h".into())),
        )
        .unwrap();
        let sources = t.password_sources.join(", ");
        assert!(
            sources.contains("PGPASSWORD")
                && sources.contains("/h/.pgpass (no line for h:5432:d:u)"),
            "{sources}"
        );
        let t = resolve(Some("host=h password=p"), &env_with(&none, None)).unwrap();
        assert!(t.password_sources.is_empty());
        assert_eq!(t.config.get_password(), Some(&b"p"[..]));
    }
}
