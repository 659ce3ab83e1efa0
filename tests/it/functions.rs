//! What the function tests share: a configuration from a list of database ids.

use backstop::config::FunctionConfig;

/// A configuration covering `databases` (comma-separated), each with a URL variable.
pub fn config(store: &str, databases: &str) -> FunctionConfig {
    let sources: serde_json::Map<String, serde_json::Value> = databases
        .split(',')
        .map(|id| {
            let var = format!("{}_DATABASE_URL", id.to_uppercase());
            (id.to_string(), serde_json::json!({ "url_env": var }))
        })
        .collect();
    let vars = [
        ("BACKSTOP_STORE", store.to_string()),
        (
            "BACKSTOP_DATABASES",
            serde_json::Value::Object(sources).to_string(),
        ),
    ];
    FunctionConfig::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .unwrap()
}
