// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// A USDC-style ERC-20 token for the demo chain and the tests: decimals and supply are set at
/// deployment, a transfer that cannot be made reverts, and the issuer can block an address (as
/// USDC's issuer can), after which transfers to or from it revert. A transfer to an address
/// marked `silent` returns false and moves nothing, as some older tokens do: paymq must not take
/// a mined transaction for a transfer without the token's Transfer event.
contract PaymqTestToken {
    string public constant name = "paymq test dollar";
    string public constant symbol = "USDC";
    uint8 public immutable decimals;
    address public immutable issuer;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => bool) public blocked;
    mapping(address => bool) public silent;

    event Transfer(address indexed from, address indexed to, uint256 value);

    constructor(uint8 decimals_, address holder, uint256 supply) {
        decimals = decimals_;
        issuer = msg.sender;
        totalSupply = supply;
        balanceOf[holder] = supply;
        emit Transfer(address(0), holder, supply);
    }

    function blockAccount(address account) external {
        require(msg.sender == issuer, "issuer only");
        blocked[account] = true;
    }

    function makeSilent(address account) external {
        require(msg.sender == issuer, "issuer only");
        silent[account] = true;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        require(!blocked[msg.sender] && !blocked[to], "blocked");
        if (silent[to]) {
            return false;
        }
        require(balanceOf[msg.sender] >= value, "transfer amount exceeds balance");
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }
}
