//! Extended attributes.
#![allow(clippy::too_many_arguments)] // fuser's `Filesystem` signatures, argument for argument

#[allow(unused_imports)]
use super::super::*;

impl QuireFs {
    pub(in crate::fuse) fn op_setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let node = tri!(reply, self.node(ino));
        tri!(reply, self.tree.set_xattr(&node, name, value, flags));
        reply.ok();
    }

    pub(in crate::fuse) fn op_getxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        size: u32,
        reply: ReplyXattr,
    ) {
        if views::is_virtual(ino.0) {
            return reply.error(Errno::ENODATA);
        }
        let node = tri!(reply, self.node(ino));
        let v = tri!(reply, self.tree.get_xattr(&node, name));
        if size == 0 {
            reply.size(v.len() as u32);
        } else if v.len() > size as usize {
            reply.error(Errno::ERANGE);
        } else {
            reply.data(&v);
        }
    }

    pub(in crate::fuse) fn op_listxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        size: u32,
        reply: ReplyXattr,
    ) {
        // A virtual entry has no attributes: an empty list, answered in
        // the form the caller asked for (a size probe or the list itself;
        // a size reply to a buffer request reads as EIO, issue 16.4).
        if views::is_virtual(ino.0) {
            return if size == 0 {
                reply.size(0)
            } else {
                reply.data(&[])
            };
        }
        let node = tri!(reply, self.node(ino));
        let names = tri!(reply, self.tree.list_xattr(&node));
        let mut buf = Vec::new();
        for n in names {
            buf.extend_from_slice(&n);
            buf.push(0);
        }
        if size == 0 {
            reply.size(buf.len() as u32);
        } else if buf.len() > size as usize {
            reply.error(Errno::ERANGE);
        } else {
            reply.data(&buf);
        }
    }

    pub(in crate::fuse) fn op_removexattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        reply: ReplyEmpty,
    ) {
        let node = tri!(reply, self.node(ino));
        tri!(reply, self.tree.remove_xattr(&node, name));
        reply.ok();
    }
}
