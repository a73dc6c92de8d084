//! The releases' NodePort Services, reached from this machine.

use super::Cx;
use crate::model::Error;
use crate::plan::NodePorts;
use crate::run::smoke;

pub fn run(cx: &Cx, s: &NodePorts) -> Result<(), Error> {
    smoke::node_ports(cx.ex, s, cx.deadline)
}
