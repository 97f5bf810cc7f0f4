//! Routes: what the proxy should serve, as JSON opaque to this crate, replaced as a
//! whole with the desired services (see [`State::put_desired_with_routes`]).

use rusqlite::Connection;

use crate::{State, StateError};

/// Replaces every route with `routes`.
pub(crate) fn replace(conn: &Connection, routes: &[(String, String)]) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM routes", [])?;
    let mut insert =
        conn.prepare_cached("INSERT INTO routes (name, definition) VALUES (?1, ?2)")?;
    for (name, definition) in routes {
        insert.execute([name, definition])?;
    }
    Ok(())
}

impl State {
    /// Every route as (name, JSON), ordered by name.
    pub fn routes(&self) -> Result<Vec<(String, String)>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, definition FROM routes ORDER BY name")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
