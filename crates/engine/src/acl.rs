//! Privileges: the GRANT and REVOKE statements that turn an object's default ACL into the
//! one it has, in the order that reproduces the same ACL array.

use serde::Deserialize;

use super::sql::Sql;

/// One privilege of one grantee, as `aclexplode()` reports it (grantee quoted, or `PUBLIC`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Grant {
    pub grantee: String,
    pub privilege: String,
    pub grantable: bool,
    /// The role that made the grant, when it is not the object's owner (a grantee holding the
    /// grant option); `None` for the owner's grants.
    #[serde(default)]
    pub grantor: Option<String>,
}

/// Statements that make `current` out of `default` on `target`, every role in them marked (e.g. `TABLE app.users`, or
/// `SELECT (id) ON TABLE ...` style targets are built by the caller via `column`).
/// `current == None` means the object still has its default privileges.
pub fn acl_statements(
    target: &str,
    column: Option<&str>,
    current: Option<&[Grant]>,
    default: &[Grant],
) -> Sql {
    statements_after(&Sql::new(), target, column, current, default)
}

/// [`acl_statements`] with `prefix` before each statement (`ALTER DEFAULT PRIVILEGES FOR ROLE
/// r`, its role marked).
pub fn statements_after(
    prefix: &Sql,
    target: &str,
    column: Option<&str>,
    current: Option<&[Grant]>,
    default: &[Grant],
) -> Sql {
    let Some(current) = current else {
        return Sql::new();
    };
    let columns = column.map(|c| format!(" ({c})")).unwrap_or_default();
    let mut sql = Sql::new();
    for grant in default {
        let kept = current
            .iter()
            .find(|g| g.grantee == grant.grantee && g.privilege == grant.privilege);
        match kept {
            None => sql
                .append(prefix.clone())
                .push_str(&format!(
                    "REVOKE {}{columns} ON {target} FROM ",
                    grant.privilege
                ))
                .role(&grant.grantee)
                .push_str(";\n"),
            Some(g) if grant.grantable && !g.grantable => sql
                .append(prefix.clone())
                .push_str(&format!(
                    "REVOKE GRANT OPTION FOR {}{columns} ON {target} FROM ",
                    grant.privilege
                ))
                .role(&grant.grantee)
                .push_str(";\n"),
            Some(_) => &mut sql,
        };
    }
    // Grants in ACL order, privileges of one grantee (from one grantor) together.
    type Pending<'a> = (&'a str, bool, Option<&'a str>, Vec<&'a str>);
    let mut pending: Vec<Pending> = Vec::new();
    for grant in current {
        let is_default = default.iter().any(|d| {
            d.grantee == grant.grantee
                && d.privilege == grant.privilege
                && (d.grantable || !grant.grantable)
        }) && grant.grantor.is_none();
        if is_default {
            continue;
        }
        let grantor = grant.grantor.as_deref();
        match pending.iter_mut().find(|(who, opt, by, _)| {
            *who == grant.grantee && *opt == grant.grantable && *by == grantor
        }) {
            Some((_, _, _, privileges)) => privileges.push(&grant.privilege),
            None => pending.push((
                &grant.grantee,
                grant.grantable,
                grantor,
                vec![&grant.privilege],
            )),
        }
    }
    for (grantee, grantable, grantor, privileges) in pending {
        let privileges: Vec<String> = privileges.iter().map(|p| format!("{p}{columns}")).collect();
        let mut grant = prefix.clone();
        grant
            .push_str(&format!("GRANT {} ON {target} TO ", privileges.join(",")))
            .role(grantee)
            .push_str(if grantable {
                " WITH GRANT OPTION;\n"
            } else {
                ";\n"
            });
        // As pg_dump does: a grant made by a grantee holding the grant option is made again
        // by that role, so it keeps its grantor (and goes when that role's option is revoked).
        match grantor {
            Some(grantor) => sql.acting_as(grantor, grant),
            None => sql.append(grant),
        };
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(grantee: &str, privilege: &str) -> Grant {
        Grant {
            grantee: grantee.into(),
            privilege: privilege.into(),
            grantable: false,
            grantor: None,
        }
    }

    #[test]
    fn default_privileges_need_no_statement() {
        let default = [g("postgres", "SELECT")];
        assert_eq!(acl_statements("TABLE t", None, None, &default).text, "");
        assert_eq!(
            acl_statements("TABLE t", None, Some(&default), &default).text,
            ""
        );
    }

    #[test]
    fn revokes_then_grants_grouped_by_grantee_in_acl_order() {
        let default = [g("PUBLIC", "EXECUTE"), g("postgres", "EXECUTE")];
        let current = [g("postgres", "EXECUTE"), g("authenticated", "EXECUTE")];
        assert_eq!(
            acl_statements("FUNCTION app.f(bigint)", None, Some(&current), &default).text,
            "REVOKE EXECUTE ON FUNCTION app.f(bigint) FROM PUBLIC;\n\
             GRANT EXECUTE ON FUNCTION app.f(bigint) TO authenticated;\n"
        );
        let current = [
            g("postgres", "SELECT"),
            g("b", "SELECT"),
            g("b", "INSERT"),
            g("a", "SELECT"),
        ];
        assert_eq!(
            acl_statements("TABLE t", None, Some(&current), &[g("postgres", "SELECT")]).text,
            "GRANT SELECT,INSERT ON TABLE t TO b;\nGRANT SELECT ON TABLE t TO a;\n"
        );
    }

    #[test]
    fn column_grants_and_grant_options() {
        let current = [
            g("authenticated", "SELECT"),
            Grant {
                grantable: true,
                ..g("admin", "UPDATE")
            },
        ];
        assert_eq!(
            acl_statements("TABLE app.users", Some("id"), Some(&current), &[]).text,
            "GRANT SELECT (id) ON TABLE app.users TO authenticated;\n\
             GRANT UPDATE (id) ON TABLE app.users TO admin WITH GRANT OPTION;\n"
        );
    }

    #[test]
    fn a_grant_made_by_a_grantee_with_the_grant_option_keeps_its_grantor() {
        let current = [
            g("owner", "SELECT"),
            Grant {
                grantable: true,
                ..g("lead", "SELECT")
            },
            Grant {
                grantor: Some("lead".into()),
                ..g("analyst", "SELECT")
            },
        ];
        assert_eq!(
            acl_statements("TABLE t", None, Some(&current), &[g("owner", "SELECT")]).text,
            "GRANT SELECT ON TABLE t TO lead WITH GRANT OPTION;\n\
             SET SESSION AUTHORIZATION lead;\nGRANT SELECT ON TABLE t TO analyst;\nRESET SESSION AUTHORIZATION;\n"
        );
    }
}
