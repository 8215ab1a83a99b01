args: whoami
