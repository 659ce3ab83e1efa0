//! How many more connections a run may open: `--jobs` is capped by what the server, the
//! database and the role allow, so a run never takes the last slots an application needs, nor
//! fails halfway on "too many connections".

use tokio_postgres::Client;

use super::describe;

/// What the server said about its connection limits, for [`jobs_allowed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRoom {
    /// Slots left for ordinary roles: `max_connections` less the reserved ones, less the
    /// sessions already open.
    pub server: i64,
    /// Left under the database's `CONNECTION LIMIT`, when it has one.
    pub database: Option<i64>,
    /// Left under the role's `CONNECTION LIMIT`, when it has one.
    pub role: Option<i64>,
}

/// Reads the room left on the server `client` is connected to (its own session counted as
/// open).
pub async fn connection_room(client: &Client) -> Result<ConnectionRoom, String> {
    let row = client
        .query_one(
            "SELECT current_setting('max_connections')::int8 \
                    - current_setting('superuser_reserved_connections')::int8 \
                    - coalesce(current_setting('reserved_connections', true)::int8, 0) \
                    - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), \
                    (SELECT CASE WHEN d.datconnlimit >= 0 THEN d.datconnlimit - \
                        (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid AND a.backend_type = 'client backend') END \
                     FROM pg_database d WHERE d.datname = current_database())::int8, \
                    (SELECT CASE WHEN r.rolconnlimit >= 0 THEN r.rolconnlimit - \
                        (SELECT count(*) FROM pg_stat_activity a WHERE a.usesysid = r.oid AND a.backend_type = 'client backend') END \
                     FROM pg_roles r WHERE r.rolname = current_user)::int8",
            &[],
        )
        .await
        .map_err(|e| describe(&e))?;
    let get = |i: usize| row.try_get::<_, Option<i64>>(i).map_err(|e| e.to_string());
    Ok(ConnectionRoom {
        server: get(0)?.unwrap_or(i64::MAX),
        database: get(1)?,
        role: get(2)?,
    })
}

/// The jobs a run asking for `asked` may have given `room`, keeping `spare` slots for its
/// other connections (a probe); at least one. `None` when all `asked` fit.
pub fn jobs_allowed(asked: usize, room: ConnectionRoom, spare: i64) -> Option<usize> {
    let left = [Some(room.server), room.database, room.role]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(i64::MAX)
        - spare;
    let allowed = left.clamp(1, asked.max(1) as i64) as usize;
    (allowed < asked).then_some(allowed)
}

/// `asked` jobs, capped by the room on the server `client` is connected to; a cap is logged
/// with what caused it. The room cannot be read: `asked`, as asked.
pub async fn cap_jobs(client: &Client, asked: usize, spare: i64) -> usize {
    match connection_room(client).await {
        Ok(room) => match jobs_allowed(asked, room, spare) {
            Some(allowed) => {
                tracing::warn!(
                    asked,
                    allowed,
                    server_slots_left = room.server,
                    database_slots_left = ?room.database,
                    role_slots_left = ?room.role,
                    "fewer parallel connections than asked: the server, database or role allows no more"
                );
                allowed
            }
            None => asked,
        },
        Err(e) => {
            tracing::debug!(error = %e, "could not read the server's connection room");
            asked
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(server: i64, database: Option<i64>, role: Option<i64>) -> ConnectionRoom {
        ConnectionRoom {
            server,
            database,
            role,
        }
    }

    #[test]
    fn jobs_are_capped_by_the_tightest_limit_and_never_below_one() {
        assert_eq!(jobs_allowed(4, room(100, None, None), 1), None);
        assert_eq!(jobs_allowed(8, room(5, None, None), 1), Some(4));
        assert_eq!(jobs_allowed(8, room(50, Some(3), None), 1), Some(2));
        assert_eq!(jobs_allowed(8, room(50, Some(30), Some(2)), 0), Some(2));
        assert_eq!(jobs_allowed(8, room(0, None, None), 1), Some(1));
        assert_eq!(jobs_allowed(1, room(0, None, None), 1), None);
    }
}
