//! A `during_rollout` probe: started before the upgrade, ended and judged by its
//! check's smoke step (or a `judge` step).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::Cmd;
use crate::providers::HostAccess;

#[derive(Clone, Debug, Serialize)]
pub struct Watch {
    /// The smoke check this belongs to.
    pub check: String,
    pub service: String,
    pub port: u16,
    pub method: String,
    pub path: String,
    /// Reads the Service: a NodePort this machine reaches is probed there, through
    /// kube-proxy as clients are; otherwise through `proxy`.
    pub services: Cmd,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<HostAccess>,
    /// The request's path through `kubectl proxy`.
    pub proxy_path: String,
    pub expect_status: u16,
    /// One request every this long (each with a 2 s deadline).
    #[serde(with = "crate::model::millis")]
    pub every: Duration,
    /// `kubectl proxy` on a unix socket (`{SOCKET}`, in a 0700 directory made at run
    /// time): never a TCP port another local user could reach.
    pub proxy: Cmd,
}

impl StepKind for Watch {
    fn commands(&self) -> Vec<&Cmd> {
        let mut v = vec![&self.services, &self.proxy];
        if let Some(HostAccess::NodeAddress { address }) = &self.access {
            v.push(address);
        }
        v
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        let w = self;
        v.line(
            s,
            &w.services,
            &format!("service {} port {}", w.service, w.port),
        );
        let otherwise = match &w.access {
            Some(access) => {
                if let HostAccess::NodeAddress { address } = access {
                    v.line(s, address, "the node's address");
                }
                let _ = writeln!(
                    s,
                    "# a NodePort this machine reaches: {} http://HOST:PORT{} (through kube-proxy, as clients)",
                    w.method, w.path
                );
                "otherwise "
            }
            None => "",
        };
        v.line(
            s,
            &w.proxy,
            &format!("{otherwise}in the background until the check's smoke step"),
        );
        let _ = writeln!(
            s,
            "# {otherwise}{} {} over the proxy's unix socket {{SOCKET}}, in a new directory only this user can enter (0700)",
            w.method, w.proxy_path
        );
        let _ = writeln!(
            s,
            "# every {} until the check's smoke step -> expect status {}; any other answer fails check {}",
            humantime::format_duration(w.every),
            w.expect_status,
            w.check
        );
    }
}
