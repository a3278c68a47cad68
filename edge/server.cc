// (being written): the lws server
